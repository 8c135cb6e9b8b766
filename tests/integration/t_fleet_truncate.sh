#!/usr/bin/env bash
# tests/integration/t_fleet_truncate.sh - TRUNCATE replicates, never silently
# diverges (issue 7, item 2).
#
# Proves, on a two-way pair with partitioned key sequences:
#  - TRUNCATE t on a, TRUNCATE parent CASCADE on b (the child goes too),
#    TRUNCATE of two tables in one statement, and TRUNCATE ... RESTART
#    IDENTITY on b: after one round of syncs both nodes hold the same, empty,
#    tables (compare agrees), and a TRUNCATE rolled back replicates nothing;
#  - RESTART IDENTITY goes back to the node's own residue (partition
#    sequences sets START WITH), so validate still passes and b's next id is
#    2, not 1 (a's residue);
#  - later inserts on both nodes, concurrently, into the truncated tables
#    (including the same parent/child pairs) replicate without a conflict:
#    every row on both nodes; and the truncated keys that come back on the
#    node that truncated them replicate as well.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/common.sh"
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/pg.sh"
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/fixtures.sh"
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/repl.sh"
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/fleet.sh"

fleet_schema
repl_setup a b
run_repctl add sync ab herd=h dbs=a:source,b:target
is "$RC" 0 "add sync ab"
run_repctl add sync ba herd=h dbs=b:source,a:target
is "$RC" 0 "add sync ba"
run_repctl partition sequences ab
is "$RC" 0 "partition sequences ab"

fill() { # NODE PREFIX: a few rows in every table
	repl_psql "$1" -q <<-SQL
		INSERT INTO users (email) SELECT '$2-' || g FROM generate_series(1, 30) g;
		INSERT INTO events (name) SELECT '$2-' || g FROM generate_series(1, 30) g;
		INSERT INTO notes (body) SELECT '$2-' || g FROM generate_series(1, 30) g;
		INSERT INTO tokens (owner) SELECT '$2-' || g FROM generate_series(1, 30) g;
		INSERT INTO settings (key, value) SELECT '$2-' || g, 'v' FROM generate_series(1, 30) g;
		WITH p AS (INSERT INTO parents (name) SELECT '$2-' || g FROM generate_series(1, 10) g RETURNING id)
		INSERT INTO children (parent_id, name) SELECT p.id, 'child of ' || p.id FROM p, generate_series(1, 3);
	SQL
}
fill a a
fill b b
ok repl_converge 5 ab ba
repl_same "filled" a b
is "$(fleet_count b children)" 60 "60 children on b"

conflicts() { pg_sql meta postgres "SELECT count(*) FROM repctl.conflict"; }
c0=$(conflicts)

# ---- a TRUNCATE rolled back replicates nothing ------------------------------------------------
repl_sql a 'BEGIN; TRUNCATE users; ROLLBACK'
repl_run ab
is "$RUN_RC/$RUN_I/$RUN_U/$RUN_D" 0/0/0/0 "a rolled back TRUNCATE sends nothing"
is "$(fleet_count b users)" 60 "... b keeps its 60 users"

# ---- the truncates ------------------------------------------------------------------------------
repl_sql a 'TRUNCATE users'
repl_sql b 'TRUNCATE parents CASCADE'
repl_sql a 'TRUNCATE notes, tokens'
repl_sql b 'TRUNCATE events RESTART IDENTITY'
is "$(fleet_count b children)" 0 "CASCADE emptied children on b"
repl_run ab
is "$RUN_RC/$RUN_D" 0/180 "ab: a's truncates arrive as 180 deletes (60 users, 60 notes, 60 tokens)"
repl_run ba
is "$RUN_RC/$RUN_D" 0/140 "ba: b's truncates arrive as 140 deletes (20 parents, 60 children, 60 events)"
for t in users events notes tokens parents children; do
	is "$(fleet_count a $t)/$(fleet_count b $t)" 0/0 "$t empty on both nodes"
done
is "$(fleet_count a settings)/$(fleet_count b settings)" 60/60 "the untouched table keeps its rows"
repl_same "after the truncates" a b
run_repctl compare ab
is "$RC" 0 "compare: no divergence after the truncates"
ok repl_converge 3 ab ba
is "$REPL_ROUNDS" 1 "a further round writes nothing"

# ---- RESTART IDENTITY goes back to the node's residue ---------------------------------------------
is "$(repl_val b "SELECT last_value || '/' || is_called FROM events_id_seq")" 2/false \
	"b's events sequence restarted at 2, its own residue (not 1, a's)"
run_repctl validate
is "$RC" 0 "validate still passes after RESTART IDENTITY"
[[ $RC == 0 ]] || diag "$OUT"

# ---- later inserts replicate --------------------------------------------------------------------
ok fleet_parallel "fill a a2" "fill b b2"
ok repl_converge 5 ab ba
for t in users events notes tokens parents children; do
	is "$(fleet_count a $t)" "$(fleet_count b $t)" "$t: same count on both after new inserts"
done
is "$(fleet_count a events)" 60 "all 60 new events on a"
is "$(fleet_count b children)" 60 "all 60 new children on b"
is "$(repl_val a "SELECT string_agg(DISTINCT (id % 10)::text, ',') FROM events WHERE name LIKE 'b2-%'")" 2 \
	"b's new events have b's residue"
is "$(conflicts)" "$c0" "no conflict: nothing collided"
repl_same "after new inserts" a b

# the very keys a truncated come back on a
repl_sql a "INSERT INTO settings (key, value) VALUES ('fresh', 'x')"
repl_sql a "TRUNCATE settings"
repl_sql a "INSERT INTO settings (key, value) VALUES ('a-1', 'back'), ('b-1', 'back too')"
ok repl_converge 5 ab ba
is "$(repl_val b "SELECT string_agg(key || '=' || value, ',' ORDER BY key) FROM settings")" \
	"a-1=back,b-1=back too" "keys truncated and inserted again on a arrive on b"
repl_same "final" a b
run_repctl compare ab
is "$RC" 0 "compare: equal at the end"

done_testing
