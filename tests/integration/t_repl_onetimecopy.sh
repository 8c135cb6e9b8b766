#!/usr/bin/env bash
# t_repl_onetimecopy.sh - a new, empty target is filled by the initial copy
# (onetimecopy=2: empty tables only; onetimecopy=1: every table replaced),
# rows and version store, then incremental sync continues from the same
# snapshot without a gap (changes made before and after the copy arrive)
# or a duplicate.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib/common.sh"
. "$HERE/lib/pg.sh"

pg_start meta
for n in a b c; do
	pg_start "$n"
	pg_createdb "$n" app
	pg_sql "$n" app "CREATE TABLE songs (id bigint PRIMARY KEY, title text, updated_at timestamptz NOT NULL DEFAULT now());
	  CREATE TABLE albums (id int PRIMARY KEY, t text)"
done
export REPCTL_META="$(pg_conninfo meta) dbname=postgres" REPCTL_STATE_DIR=$TEST_TMP/state
unset REPCTL_CONFIG REPCTL_NODE
rc() { run_repctl "$@"; is "$RC" 0 "repctl $* (${ERR:0:200})"; }
q() { pg_sql "$1" app "$2"; }
sums() { q "$1" "SELECT md5(string_agg(s::text, '|' ORDER BY id)) FROM songs s"; }
rc install
# rows that exist before capture is installed: only a copy can move them
q a "INSERT INTO songs SELECT g, 'song ' || g FROM generate_series(1, 30000) g; INSERT INTO albums VALUES (1, 'a1')"
for n in a b c; do
	rc add database "$n" conn="$(pg_conninfo "$n" app)"
	rc add all tables --herd=h --db="$n"
done
# changes after capture, before the sync exists
q a "UPDATE songs SET title = 'changed early' WHERE id <= 10; INSERT INTO songs VALUES (40000, 'early new')"
q b "INSERT INTO albums VALUES (2, 'b only')"   # b's albums is not empty

rc add sync ab relgroup=h dbs=a:source,b:target onetimecopy=2
rc run ab
like "$ERR" "onetimecopy a -> b: \"public\".\"songs\": 30001 row" "songs copied with progress"
like "$ERR" "albums\" is not empty" "a non-empty table is left to incremental sync"
is "$(sums b)" "$(sums a)" "b has a's songs exactly"
is "$(q b "SELECT count(*) FROM albums")" 1 "b's own albums row kept (mode 2)"
# incremental continues, nothing doubled
q a "UPDATE songs SET title = 'after copy' WHERE id = 5; DELETE FROM songs WHERE id = 6; INSERT INTO songs VALUES (50000, 'late')"
rc run ab
like "$OUT" "I/U/D 1/1/1" "the next run moves exactly the later changes"
is "$(sums b)" "$(sums a)" "still identical"
rc run ab
like "$OUT" "I/U/D 0/0/0" "a further run writes nothing"

# onetimecopy=1 replaces the target's tables
q c "INSERT INTO songs VALUES (999999, 'c stale')"
rc add sync ac relgroup=h dbs=a:source,c:target onetimecopy=1
rc run ac
is "$(sums c)" "$(sums a)" "mode 1 replaced c's songs with a's"
is "$(q c "SELECT count(*) FROM songs WHERE id = 999999")" 0 "the stale row is gone"
is "$(q c "SELECT string_agg(t, ',' ORDER BY id) FROM albums")" "a1" "albums copied too"
done_testing
