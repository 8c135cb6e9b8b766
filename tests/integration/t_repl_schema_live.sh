#!/usr/bin/env bash
# tests/integration/t_repl_schema_live.sh - schema changes under a running
# coordinator, whose runners keep their connections to the nodes (and, for
# tables of built-in types, their staging tables: created once per
# connection and table shape, emptied at every commit).
#
# Nodes a and b, syncs ab and ba, `repctl start`.  On both nodes, one
# after the other while rows keep coming: ADD COLUMN, ALTER COLUMN TYPE,
# DROP COLUMN on songs, then a column of an enum type (created for it)
# and its removal.  Proves:
#  - after each change the new rows reach the other node with every
#    column (a kept staging table of the old shape is never used for the
#    new one);
#  - the enum type (vibe) can be dropped on both nodes while the runners hold
#    their connections (no kept table depends on a user's type), within a
#    5 s lock_timeout;
#  - at the end both nodes hold the same rows.
# shellcheck disable=SC2317 # helpers are called through wait_until
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
for e in ab ba; do
	run_repctl add sync "$e" relgroup=h dbs="${e:0:1}:source,${e:1:1}:target"
	is "$RC" 0 "add sync $e"
done
repl_config 'sync_interval = 1;'
repl_start

# on NODE, the row ID has EXPR (a text) equal to WANT
row_is() { [[ $(repl_val "$1" "SELECT ($3)::text FROM songs WHERE id = $2") == "$4" ]]; }
both() { # SQL: run it on a, then on b
	repl_sql a "$1" >/dev/null
	repl_sql b "$1" >/dev/null
}

repl_sql a "INSERT INTO songs (id, title) VALUES (1, 'before')"
ok wait_until 30 row_is b 1 title before

both "ALTER TABLE songs ADD COLUMN genre text"
repl_sql a "INSERT INTO songs (id, title, genre) VALUES (2, 'added', 'jazz')"
ok wait_until 30 row_is b 2 genre jazz
repl_sql b "UPDATE songs SET genre = 'blues', updated_at = now() WHERE id = 1"
ok wait_until 30 row_is a 1 genre blues

both "ALTER TABLE songs ALTER COLUMN genre TYPE varchar(40)"
repl_sql a "INSERT INTO songs (id, title, genre) VALUES (3, 'typed', 'rock')"
ok wait_until 30 row_is b 3 genre rock

both "ALTER TABLE songs DROP COLUMN genre"
repl_sql b "INSERT INTO songs (id, title, plays) VALUES (4, 'dropped', 7)"
ok wait_until 30 row_is a 4 plays 7

both "CREATE TYPE vibe AS ENUM ('sad', 'ok'); ALTER TABLE songs ADD COLUMN vibe vibe"
repl_sql a "INSERT INTO songs (id, title, vibe) VALUES (5, 'moody', 'ok')"
ok wait_until 30 row_is b 5 vibe ok
both "ALTER TABLE songs DROP COLUMN vibe"
repl_sql a "INSERT INTO songs (id, title) VALUES (6, 'after vibe')"
ok wait_until 30 row_is b 6 title "after vibe"
for n in a b; do
	out=$(repl_psql "$n" -c "SET lock_timeout = '5s'; DROP TYPE vibe" 2>&1) && rc=0 || rc=$?
	is "$rc" 0 "DROP TYPE vibe on $n while the runners hold their connections ($out)"
done
repl_sql b "INSERT INTO songs (id, title) VALUES (7, 'last')"
ok wait_until 30 row_is a 7 title last
same() { [[ $(repl_sums a) == "$(repl_sums b)" ]]; }
ok wait_until 30 same
run_repctl stop
is "$RC" 0 "stop"

done_testing
