#!/usr/bin/env bash
# tests/integration/t_repl_badinput.sh - bad input is refused clearly and
# touches nothing (design property 7), on a pair of one-way syncs ab / ba.
#
# Proves:
#  - a column on b only (schema drift): `repctl validate` exits 1 naming
#    the column; `repctl run ab` exits non-zero with a message naming the
#    table and both nodes; b's rows, checksums and shadow tables are
#    unchanged, the configuration is untouched and that table's position
#    did not move (the batch is not lost: once the column exists on both
#    nodes the next run delivers it, in both directions);
#  - while that table is drifted, the other tables keep flowing (the design:
#    "schema drift must pause only the affected table, not the whole sync");
#  - a column whose type differs: the same;
#  - a table dropped on one node: validate exits 1 naming it; run exits
#    non-zero naming the table and the node lacking it; nothing written on
#    b, its position kept; changes to other tables of the same batch (sorted
#    before and after it) still reach b; re-creating it (add table) resumes
#    and nothing is lost;
#  - a bad conflict_strategy at add sync / update sync, an unknown node in
#    dbs=, an unknown sync for run, a bad configuration file: refused with
#    a message, exit non-zero, metadata untouched (and no data touched).
# shellcheck disable=SC2317 # helpers are called through wait_until / ok
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

repl_setup a b
run_repctl add sync ab relgroup=h dbs=a:source,b:target conflict_strategy=bucardo_latest
is "$RC" 0 "add sync ab"
run_repctl add sync ba relgroup=h dbs=b:source,a:target conflict_strategy=bucardo_latest
is "$RC" 0 "add sync ba"
pg_sql a "$REPL_DB" "INSERT INTO songs (id, title) SELECT g, 'song ' || g FROM generate_series(1, 20) g;
                     INSERT INTO tags (id, name) VALUES (1, 'jazz'), (2, 'blues')"
for s in ab ba; do
	repl_run $s
	is "$RUN_RC" 0 "initial run $s"
done
repl_same "start" a b

meta() { pg_sql meta postgres "$1"; }
# the configuration (the run history, node state and positions of tables
# without changes may move on)
meta_config() {
	meta "SELECT 'node ' || name || ' ' || conninfo FROM repctl.node ORDER BY 1;
	      SELECT 'herd_table ' || t::text FROM repctl.herd_table t ORDER BY 1;
	      SELECT 'sync ' || s.name || ' ' || s.strategy || ' ' || s.status FROM repctl.sync s ORDER BY 1;
	      SELECT 'sync_node ' || t::text FROM repctl.sync_node t ORDER BY 1"
}
# pos SYNC TABLE : the position of one table of the sync's only edge
pos() { meta "SELECT snapshot FROM repctl.position WHERE sync = '$1' AND table_name = '$2'"; }
# b_state : everything on b a run could change
b_state() { repl_sums b; repl_shadow_sums b; }

# ---- a column on b only -------------------------------------------------------------------
pg_sql b "$REPL_DB" "ALTER TABLE songs ADD COLUMN genre text"
pg_sql a "$REPL_DB" "UPDATE songs SET title = 'changed on a', updated_at = now() WHERE id <= 5;
                     INSERT INTO songs (id, title) VALUES (100, 'new on a')"
run_repctl validate
is "$RC" 1 "validate: exit 1 with a column on b only"
like "$OUT$ERR" "genre" "validate names the column"
like "$OUT$ERR" "songs" "validate names the table"
cfg=$(meta_config)
state=$(b_state)
pos_songs=$(pos ab songs)
ok test -n "$pos_songs"
count_b=$(repl_val b "SELECT count(*) FROM songs")
repl_run ab
ok test "$RUN_RC" -ne 0
like "$RUN_ERR" "songs" "run ab: the message names the table"
like "$RUN_ERR" "'a'" "run ab: the message names node a"
like "$RUN_ERR" "'b'" "run ab: the message names node b"
is "$(b_state)" "$state" "run ab: nothing written on b (checksums and shadow tables unchanged)"
is "$(repl_val b "SELECT count(*) FROM songs")" "$count_b" "run ab: b's row count unchanged"
is "$(meta_config)" "$cfg" "run ab: metadata (nodes, herds, syncs) untouched"
is "$(pos ab songs)" "$pos_songs" "run ab: the drifted table's position did not move"
like "$(meta "SELECT error FROM repctl.run WHERE sync = 'ab' ORDER BY id DESC LIMIT 1")" "songs" \
	"the failed run is recorded with its error"
pg_sql b "$REPL_DB" "UPDATE songs SET plays = 7, updated_at = now() WHERE id = 10"
state_a=$(repl_sums a)
repl_run ba
ok test "$RUN_RC" -ne 0
like "$RUN_ERR" "songs" "run ba (with a change of b to send) also refuses the drifted table"
is "$(repl_sums a)" "$state_a" "run ba: nothing written on a"

# the other tables keep flowing while songs is drifted
pg_sql a "$REPL_DB" "INSERT INTO tags (id, name) VALUES (3, 'flows anyway')"
repl_run ab
like "$RUN_ERR" "songs" "run ab still reports the drifted table"
is "$(repl_val b "SELECT count(*) FROM tags WHERE id = 3")" 1 \
	"drift pauses only the affected table: tags still reaches b"
is "$(repl_val b "SELECT count(*) FROM songs WHERE id = 100")" 0 "... and songs does not"

# the same column on a too: the held-back batch arrives
pg_sql a "$REPL_DB" "ALTER TABLE songs ADD COLUMN genre text"
run_repctl validate
is "$RC" 0 "validate passes once both nodes have the column"
repl_run ab
is "$RUN_RC" 0 "run ab good again"
repl_run ba
is "$RUN_RC" 0 "run ba good again"
is "$(repl_val b "SELECT title FROM songs WHERE id = 100")" 'new on a' "the held-back insert arrived"
is "$(repl_val b "SELECT count(*) FROM songs WHERE title = 'changed on a'")" 5 "the held-back updates arrived"
is "$(repl_val a "SELECT plays FROM songs WHERE id = 10")" 7 "b's held-back update arrived on a"
repl_same "drift resolved" a b

# ---- a column type differing -----------------------------------------------------------
pg_sql b "$REPL_DB" "ALTER TABLE tags ALTER COLUMN name TYPE varchar(50)"
pg_sql a "$REPL_DB" "UPDATE tags SET name = 'type drift' WHERE id = 1"
run_repctl validate
is "$RC" 1 "validate: exit 1 with a column type differing"
like "$OUT$ERR" "name" "validate names the column"
state=$(b_state)
cfg=$(meta_config)
pos_tags=$(pos ab tags)
repl_run ab
ok test "$RUN_RC" -ne 0
like "$RUN_ERR" "tags" "run ab: the message names the table"
like "$RUN_ERR" "'a'.*'b'|'b'.*'a'" "run ab: the message names both nodes"
is "$(b_state)" "$state" "run ab: nothing written on b"
is "$(meta_config)" "$cfg" "run ab: metadata untouched"
is "$(pos ab tags)" "$pos_tags" "run ab: the table's position not advanced"
pg_sql b "$REPL_DB" "ALTER TABLE tags ALTER COLUMN name TYPE text"
repl_run ab
is "$RUN_RC" 0 "types equal again: run ab good"
is "$(repl_val b "SELECT name FROM tags WHERE id = 1")" 'type drift' "the held-back update arrived"
repl_run ba

# ---- a table dropped on one node ----------------------------------------------------------
pg_sql b "$REPL_DB" "DROP TABLE playlist_items"
pg_sql a "$REPL_DB" "INSERT INTO playlist_items (playlist_id, position, song_id) VALUES (1, 1, 1)"
run_repctl validate
is "$RC" 1 "validate: exit 1 with a table missing on b"
like "$OUT$ERR" "playlist_items" "validate names the missing table"
state=$(b_state)
cfg=$(meta_config)
pos_items=$(pos ab playlist_items)
repl_run ab
ok test "$RUN_RC" -ne 0
like "$RUN_ERR" "playlist_items" "run ab: the message names the table"
like "$RUN_ERR" "node 'b'" "run ab: the message names the node that lacks it"
is "$(b_state)" "$state" "run ab: nothing written on b"
is "$(meta_config)" "$cfg" "run ab: metadata untouched"
is "$(pos ab playlist_items)" "$pos_items" "run ab: the missing table's position not advanced"
# the same with changes to tables that sort before and after it in the same
# batch: they are applied (or held), never lost
pg_sql a "$REPL_DB" "INSERT INTO albums (id, name) VALUES ('44444444-4444-4444-4444-444444444444', 'next to a missing table');
                     INSERT INTO artists (id, name) VALUES (44, 'next to a missing table');
                     INSERT INTO songs (id, title) VALUES (444, 'next to a missing table')"
repl_run ab
ok test "$RUN_RC" -ne 0
like "$RUN_ERR" "playlist_items" "run ab: still names the missing table"
is "$(repl_val b "SELECT (SELECT count(*) FROM albums WHERE name = 'next to a missing table')
                       + (SELECT count(*) FROM artists WHERE id = 44)
                       + (SELECT count(*) FROM songs WHERE id = 444)")" 3 \
	"the other tables of the batch reach b while playlist_items is missing"
pg_psql b "$REPL_DB" <<<"$(sed -n '/CREATE TABLE public.playlist_items/,/);/p' <<<"$REPL_SCHEMA_SQL")"
run_repctl add table public.playlist_items --herd=h --db=b
is "$RC" 0 "add table public.playlist_items --db=b (capture again)"
repl_run ab
is "$RUN_RC" 0 "table back: run ab good"
repl_run ba
is "$RUN_RC" 0 "table back: run ba good"
repl_same "table back (nothing lost)" a b

# ---- refused commands: nothing touched ----------------------------------------------------
sums_a=$(repl_sums a)
sums_b=$(repl_sums b)
refused add sync bad relgroup=h dbs=a:source,b:target conflict_strategy=bucardo_newest
like "$ERR" "conflict_strategy" "bad strategy at add sync: the message names the option"
like "$ERR" "latest" "... and lists the valid strategies"
refused update sync ab conflict_strategy=whatever
like "$ERR" "conflict_strategy" "bad strategy at update sync refused"
refused add sync bad2 relgroup=h dbs=a:source,zz:target
like "$ERR" "zz" "unknown node in dbs= refused, naming it"
refused run nosuch
like "$ERR" "nosuch" "run of an unknown sync refused, naming it"
printf 'sync_interval = "often";\nbogus_key = 1;\n' >"$TEST_TMP/bad.conf"
refused -c "$TEST_TMP/bad.conf" run ab
like "$ERR" "bad.conf" "a bad configuration file is refused, naming the file"
is "$(repl_sums a)" "$sums_a" "no data touched on a"
is "$(repl_sums b)" "$sums_b" "no data touched on b"

done_testing
