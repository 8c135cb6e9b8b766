#!/usr/bin/env bash
# tests/integration/t_fleet_keys.sh - keys from sequences (issue 7, item 1).
#
# Proves:
#  - the hazard is real: without partitioning, two nodes inserting 200 rows
#    each with default ids, at the same time, collide (ids 1..200 on both):
#    after the sync the nodes agree but hold 200 rows, not 400, and the
#    collisions are logged as conflicts;
#  - `add sync` warns, and `validate` reports (exit 1), every table whose
#    primary key takes its default from a sequence (bigserial, nextval) or
#    is an identity column, naming the table, the column and both remedies
#    (partition sequences, UUID keys); not the uuid and plain keys;
#  - `repctl partition sequences SYNC` gives node a residue 1 and node b
#    residue 2 of step 10 above every id in use, sets START WITH too, and
#    records it in repctl.seq_partition; validate then passes; running it
#    again changes nothing;
#  - then the same concurrent inserts (200 + 200 rows into three tables)
#    never collide: after the sync both nodes hold all 400 rows of each,
#    no conflict, a's ids = 1 and b's = 2 (mod 10);
#  - a node added later (add database + add all tables + a sync with a) gets
#    a free residue (3: its position would give 2, which b holds) from the
#    same command, a keeps its own, and c's inserts replicate without
#    collision; a --step that would differ from the fleet's is refused.
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

# ins NODE PREFIX N: N single-row autocommitted inserts with default ids into
# users, events and notes (one psql session).
ins() {
	local node=$1 p=$2 n=$3 i
	for ((i = 1; i <= n; i++)); do
		printf "INSERT INTO users (email) VALUES ('%s-%d');\n" "$p" "$i"
		printf "INSERT INTO events (name) VALUES ('%s-%d');\n" "$p" "$i"
		printf "INSERT INTO notes (body) VALUES ('%s-%d');\n" "$p" "$i"
	done | repl_psql "$node" -q >/dev/null
}

# ---- add sync warns ----------------------------------------------------------------------
run_repctl add sync ab herd=h dbs=a:source,b:target
is "$RC" 0 "add sync ab"
for tc in users.id events.id notes.id; do
	like "$ERR" "warning: table public\\.${tc%.*}: key column ${tc#*.} " "add sync warns about $tc"
done
like "$ERR" "events: key column id is an identity column" "... says events.id is an identity column"
like "$ERR" "users: key column id takes its default from sequence public.users_id_seq" \
	"... names the sequence of users.id"
like "$ERR" "notes: key column id takes its default from sequence public.note_ids" \
	"... names a sequence used through nextval()"
like "$ERR" "node 'a' \\(INCREMENT BY 1, next 1\\) and node 'b' \\(INCREMENT BY 1, next 1\\)" \
	"... names both nodes and their sequences"
like "$ERR" "hint: run 'repctl partition sequences ab'.*or make the key a UUID" \
	"... with both remedies"
unlike "$ERR" "tokens|settings" "uuid and plain keys are not flagged"
run_repctl add sync ba herd=h dbs=b:source,a:target
is "$RC" 0 "add sync ba"

# ---- validate reports them ----------------------------------------------------------------
run_repctl validate
is "$RC" 1 "validate: exit 1 with unpartitioned key sequences"
for t in users events notes parents children; do
	like "$OUT" "^problem: table public\\.$t: key column id .*not partitioned" "validate: problem line for $t.id"
done
is "$(grep -c '^problem: table public.users: key column' <<<"$OUT")" 1 \
	"users reported once though two syncs use it"
like "$OUT" "hint: run 'repctl partition sequences ab'" "validate: remedy 1, partition sequences"
like "$OUT" "make the key a UUID \\(uuid DEFAULT gen_random_uuid\\(\\)" "validate: remedy 2, UUID keys"
unlike "$OUT" "public\\.(tokens|settings)" "validate: uuid and plain keys not flagged"

# ---- the hazard is real -------------------------------------------------------------------
ok fleet_parallel "ins a a 200" "ins b b 200"
is "$(fleet_count a users)/$(fleet_count b users)" 200/200 "each node holds its own 200 users"
is "$(repl_val a 'SELECT max(id) FROM users')/$(repl_val b 'SELECT max(id) FROM users')" 200/200 \
	"... with the same ids 1..200"
ok repl_converge 5 ab ba
repl_same "unpartitioned: the nodes agree" a b
is "$(fleet_count a users)" 200 "unpartitioned: 200 users after the sync instead of 400 (collisions)"
lost=$(repl_val a "SELECT 400 - count(*) FROM users WHERE email LIKE 'a-%' OR email LIKE 'b-%'")
is "$lost" 200 "... 200 rows lost to collisions"
is "$(pg_sql meta postgres "SELECT count(*) >= 200 FROM repctl.conflict WHERE table_name = 'users'")" t \
	"... logged as conflicts"
# start over: empty tables everywhere (the sequences stay at 200)
repl_sql a 'TRUNCATE users, events, notes'
ok repl_converge 5 ab ba
is "$(fleet_count b users)$(fleet_count b events)$(fleet_count b notes)" 000 "tables emptied on both"

# ---- partition sequences --------------------------------------------------------------------
snap_before=$(pg_sql meta postgres "SELECT count(*) FROM repctl.seq_partition")
is "$snap_before" 0 "no partition recorded yet"
run_repctl help partition sequences
like "$OUT" "usage: repctl partition sequences SYNC \\[--step=N\\]" "help partition sequences"
run_repctl partition sequences ab
is "$RC" 0 "partition sequences ab"
like "$OUT" "step 10" "... step 10 by default"
like "$OUT" "node 'a': residue 1" "... a gets residue 1 (first in dbs=)"
like "$OUT" "node 'b': residue 2" "... b gets residue 2"
like "$OUT" "public.users_id_seq: INCREMENT BY 10, next value 201" "... a's users next 201 (above 200)"
like "$OUT" "public.users_id_seq: INCREMENT BY 10, next value 202" "... b's users next 202"
[[ $RC == 0 ]] || diag "$ERR"
for n in a b; do
	is "$(repl_val $n "SELECT string_agg(increment_by::text, ',' ORDER BY sequencename) FROM pg_sequences WHERE schemaname = 'public'")" \
		"10,10,10,10,10" "every key sequence on $n has INCREMENT BY 10"
done
is "$(repl_val b "SELECT start_value FROM pg_sequences WHERE sequencename = 'users_id_seq'")" 2 \
	"START WITH on b's residue (what RESTART IDENTITY goes back to)"
is "$(pg_sql meta postgres "SELECT string_agg(DISTINCT node || ':' || residue || '/' || step, ' ' ORDER BY node || ':' || residue || '/' || step) FROM repctl.seq_partition")" \
	"a:1/10 b:2/10" "recorded in repctl.seq_partition (node, residue, step)"
is "$(pg_sql meta postgres "SELECT count(*) FROM repctl.seq_partition")" 10 \
	"... one row per node and sequence (5 sequences on 2 nodes)"
run_repctl validate
is "$RC" 0 "validate passes once the sequences are partitioned"
[[ $RC == 0 ]] || diag "$OUT"
run_repctl partition sequences ab
is "$RC" 0 "partition sequences ab again"
like "$OUT" "node 'a': residue 1 \\(kept\\)" "... a keeps its residue"
like "$OUT" "INCREMENT" "... the sequences are listed"
unlike "$(grep 'INCREMENT' <<<"$OUT")" "next value [0-9]+$" "... every sequence unchanged"

# ---- concurrent inserts no longer collide ----------------------------------------------------
ok fleet_parallel "ins a a 200" "ins b b 200"
conf_before=$(pg_sql meta postgres "SELECT count(*) FROM repctl.conflict")
ok repl_converge 5 ab ba
for t in users events notes; do
	is "$(fleet_count a $t)/$(fleet_count b $t)" 400/400 "partitioned: all 400 $t on both nodes"
done
is "$(pg_sql meta postgres "SELECT count(*) FROM repctl.conflict")" "$conf_before" "partitioned: no conflict"
is "$(repl_val a "SELECT string_agg(DISTINCT (id % 10)::text, ',') FROM users WHERE email LIKE 'a-%'")" 1 \
	"a's users have ids = 1 (mod 10)"
is "$(repl_val a "SELECT string_agg(DISTINCT (id % 10)::text, ',') FROM events WHERE name LIKE 'b-%'")" 2 \
	"b's events (identity) have ids = 2 (mod 10)"
is "$(repl_val a "SELECT min(id) FROM users")" 201 "no id at or below the old maximum was handed out again"
repl_same "partitioned" a b

# ---- a node added later gets a free residue -----------------------------------------------
repl_add_node c
run_repctl add sync ac herd=h dbs=a:source,c:source
is "$RC" 0 "add sync ac (a new client)"
like "$ERR" "warning: table public.users: key column id .*node 'c' \\(INCREMENT BY 1" \
	"add sync warns about c's unpartitioned sequences"
run_repctl partition sequences ac --step=5
is "$RC" 1 "a --step different from the fleet's is refused while b uses it"
like "$ERR" "partitioned with step 10 \\(nodes b, outside sync 'ac'" "... naming the step and the node"
run_repctl partition sequences ac
is "$RC" 0 "partition sequences ac"
like "$OUT" "node 'a': residue 1 \\(kept\\)" "a keeps residue 1"
like "$OUT" "node 'c': residue 3" "c gets residue 3 (2 is b's)"
is "$(repl_val c "SELECT last_value % 10 FROM users_id_seq")" 3 "c's users sequence is on residue 3"
run_repctl validate
is "$RC" 0 "validate passes with three nodes"
ok repl_converge 5 ac
is "$(fleet_count c users)" 400 "c filled by the sync (400 users)"
ins c c 20
ok repl_converge 5 ac ab ba
is "$(repl_val c "SELECT string_agg(DISTINCT (id % 10)::text, ',') FROM users WHERE email LIKE 'c-%'")" 3 \
	"c's new users have ids = 3 (mod 10)"
is "$(repl_val c "SELECT min(id) > (SELECT max(id) FROM users WHERE email NOT LIKE 'c-%') FROM users WHERE email LIKE 'c-%'")" t \
	"... above every id already in use"
is "$(fleet_count b users)" 420 "c's rows reached b through a (420 users)"
repl_same "three nodes" a b c
is "$(pg_sql meta postgres "SELECT string_agg(DISTINCT node || ':' || residue, ' ' ORDER BY node || ':' || residue) FROM repctl.seq_partition")" \
	"a:1 b:2 c:3" "recorded: a 1, b 2, c 3"

done_testing
