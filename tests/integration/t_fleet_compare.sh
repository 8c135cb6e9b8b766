#!/usr/bin/env bash
# tests/integration/t_fleet_compare.sh - compare and repair (issue 7, item 5).
#
# Proves:
#  - on equal nodes `repctl compare SYNC` exits 0 and costs one checksum per
#    node and table (cheap when equal); the same for a herd;
#  - rows corrupted on b behind repctl's back (capture skipped: the engine
#    never hears of it, a sync run writes nothing and the shadow tables do
#    not change) - updated, deleted and extra rows, in a bigint-keyed table
#    of 3000 rows, a composite key, a text key and a table with a quoted
#    name - are found exactly: compare exits 1 and names every differing key
#    with the nodes holding it (missing or which md5), no other key, narrowing
#    through key ranges (far fewer checksums than rows); --table limits it;
#  - `repctl repair SYNC --from a` gives b exactly a's version of those rows
#    through the normal apply (the run is recorded with its I/U/D: the rows
#    b lacked inserted, the differing ones updated, the extra ones deleted),
#    and compare is clean after it; a further run writes nothing;
#  - repair of a herd from b fixes a row corrupted on a through the herd's
#    syncs; repair from a node that is not a source of the sync is refused
#    and changes nothing; an unknown name is an error.
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
run_repctl add sync ab herd=h dbs=a:source,b:target
is "$RC" 0 "add sync ab"
run_repctl add sync ba herd=h dbs=b:source,a:target
is "$RC" 0 "add sync ba"

pg_psql a "$REPL_DB" <<'SQL'
INSERT INTO songs (id, title, plays) SELECT g, 'song ' || g, g FROM generate_series(1, 3000) g;
INSERT INTO albums (name) SELECT 'album ' || g FROM generate_series(1, 50) g;
INSERT INTO playlist_items (playlist_id, position, song_id)
 SELECT p, pos, p * 100 + pos FROM generate_series(1, 20) p, generate_series(1, 10) pos;
INSERT INTO "Weird ""name""" (a, b, "B c", updated_at) VALUES (1, 'x', 'one', now()), (2, 'y''s', 'two', now());
INSERT INTO schema_migrations SELECT '2024010100' || lpad(g::text, 4, '0') FROM generate_series(1, 100) g;
INSERT INTO tags (id, name) VALUES (1, 'jazz'), (2, 'blues');
SQL
ok repl_converge 5 ab ba
repl_same "before" a b
ntables=$(repl_sums a | wc -l)

# ---- equal: one checksum per node and table ------------------------------------------------
run_repctl compare ab
is "$RC" 0 "compare ab on equal nodes: exit 0"
like "$OUT" "^compare ab: all $ntables table\\(s\\) equal on a, b \\($((ntables * 2)) range checksum\\(s\\)\\)$" \
	"... all $ntables tables equal, one checksum per node and table"
like "$OUT" "^public.songs: equal on a, b \\(3000 row\\(s\\)\\)$" "... songs: 3000 rows equal"
run_repctl compare h
is "$RC" 0 "compare of the herd h: exit 0"

# ---- corrupt b behind repctl's back -------------------------------------------------------
shadow_b=$(repl_shadow_sums b)
pg_psql b "$REPL_DB" <<'SQL'
BEGIN;
-- the capture triggers skip writes made with repctl.origin set (as the applier's)
SET LOCAL repctl.origin = 'corruption';
UPDATE songs SET title = 'corrupt' WHERE id IN (17, 1500, 2999);
DELETE FROM songs WHERE id IN (42, 2500);
INSERT INTO songs (id, title) VALUES (99999, 'extra on b');
UPDATE playlist_items SET song_id = -1 WHERE playlist_id = 7 AND position = 3;
INSERT INTO schema_migrations VALUES ('29990101000000');
UPDATE "Weird ""name""" SET "B c" = 'changed' WHERE a = 2;
COMMIT;
SQL
is "$(repl_shadow_sums b)" "$shadow_b" "the corruption bypassed capture (b's shadow tables unchanged)"
repl_run ab
is "$RUN_RC/$RUN_I/$RUN_U/$RUN_D" 0/0/0/0 "a sync run does not see it (silent divergence)"
repl_run ba
is "$RUN_RC/$RUN_I/$RUN_U/$RUN_D" 0/0/0/0 "... in either direction"

run_repctl compare ab
is "$RC" 1 "compare ab: exit 1 when rows differ"
printf '%s\n' "$OUT" | sed 's/^/#   /'
diffs=$(grep -E '^  ' <<<"$OUT" || true)
is "$(wc -l <<<"$diffs")" 9 "exactly 9 differing keys listed"
for id in 17 1500 2999; do
	like "$diffs" "^  public.songs \\{\"id\": $id\\}: a=[0-9a-f]{8} b=[0-9a-f]{8}$" "songs $id: differs on both"
done
for id in 42 2500; do
	like "$diffs" "^  public.songs \\{\"id\": $id\\}: a=[0-9a-f]{8} b=missing$" "songs $id: missing on b"
done
like "$diffs" '^  public.songs \{"id": 99999\}: a=missing b=[0-9a-f]{8}$' "songs 99999: missing on a"
like "$diffs" '^  public.playlist_items \{"position": 3, "playlist_id": 7\}: a=[0-9a-f]{8} b=[0-9a-f]{8}$' \
	"composite key (7, 3) differs"
like "$diffs" '^  public.schema_migrations \{"version": "29990101000000"\}: a=missing b=' \
	"text key only on b"
like "$diffs" '^  public."Weird ""name""" \{"a": 2, "b": "y.s"\}: a=' "quoted table, composite text key"
like "$OUT" "^public.songs: 6 key\\(s\\) differ among a, b$" "songs: 6 keys"
like "$OUT" "^public.albums: equal on a, b \\(50 row\\(s\\)\\)$" "albums: equal"
like "$OUT" "^compare ab: 9 differing key\\(s\\) in 4 of $ntables table\\(s\\)" "summary: 9 keys in 4 tables"
checksums=$(sed -nE 's/.*\(([0-9]+) range checksum.*/\1/p' <<<"$OUT")
note "range checksums: $checksums"
ok test "$checksums" -gt $((ntables * 2))
ok test "$checksums" -lt 300

run_repctl compare ab --table=public.songs
is "$RC" 1 "compare --table=public.songs: exit 1"
is "$(grep -cE '^  ' <<<"$OUT")" 6 "... only the 6 keys of songs"
unlike "$OUT" "playlist_items" "... no other table"

# ---- repair from a ---------------------------------------------------------------------------
run_repctl repair ab --from b
is "$RC" 1 "repair ab --from b refused: b is not a source of ab"
like "$ERR" "node 'b' is not a source of sync 'ab'" "... says why"
is "$(repl_shadow_sums b)" "$shadow_b" "... and changed nothing on b"
run_repctl repair nosuch --from a
is "$RC" 1 "repair of an unknown name: exit 1"
like "$ERR" "no sync or herd 'nosuch'" "... names it"

last_run=$(pg_sql meta postgres "SELECT max(id) FROM repctl.run")
run_repctl repair ab --from a
is "$RC" 0 "repair ab --from a: exit 0"
printf '%s\n' "$OUT" | sed 's/^/#   /'
[[ $RC == 0 ]] || diag "$ERR"
like "$OUT" "7 row\\(s\\) of 'a' touched and 2 tombstone\\(s\\) written on 'a'" \
	"touched a's 7 rows and wrote 2 tombstones (keys a lacks)"
like "$OUT" "^run ab: good, I/U/D 2/5/2, 0 conflict" "the sync applied them: 2 inserted, 5 updated, 2 deleted"
like "$OUT" "every node now holds 'a''s version" "repair says the nodes agree"
is "$(pg_sql meta postgres "SELECT count(*) FROM repctl.run WHERE id > $last_run AND sync = 'ab' AND ok AND inserts = 2 AND updates = 5 AND deletes = 2")" 1 \
	"the repair's run is recorded in the run history"
repl_same "after repair" a b
is "$(repl_val b "SELECT title FROM songs WHERE id = 1500")" "song 1500" "b has a's song 1500 again"
is "$(repl_val b "SELECT count(*) FROM songs WHERE id = 99999")" 0 "b's extra row is gone"
is "$(repl_val b "SELECT count(*) FROM schema_migrations WHERE version = '29990101000000'")" 0 \
	"b's extra text-keyed row is gone"
run_repctl compare ab
is "$RC" 0 "compare after repair: exit 0"
repl_run ab
is "$RUN_RC/$RUN_I/$RUN_U/$RUN_D/$RUN_C" 0/0/0/0/0 "a further run of ab writes nothing"
repl_run ba
is "$RUN_RC/$RUN_I/$RUN_U/$RUN_D/$RUN_C" 0/0/0/0/0 "a further run of ba writes nothing"

# ---- repair a herd from b ------------------------------------------------------------------------
pg_psql a "$REPL_DB" <<'SQL'
BEGIN;
SET LOCAL repctl.origin = 'corruption';
UPDATE tags SET name = 'corrupt on a' WHERE id = 2;
DELETE FROM albums WHERE name = 'album 7';
COMMIT;
SQL
run_repctl compare h
is "$RC" 1 "compare h finds the rows corrupted on a"
is "$(grep -cE '^  ' <<<"$OUT")" 2 "... 2 keys"
run_repctl repair h --from b
is "$RC" 0 "repair h --from b"
[[ $RC == 0 ]] || diag "$OUT $ERR"
like "$OUT" "^run ba: good, I/U/D 1/1/0" "... through sync ba: 1 insert, 1 update"
is "$(repl_val a "SELECT name FROM tags WHERE id = 2")" blues "a has b's tag again"
is "$(repl_val a "SELECT count(*) FROM albums WHERE name = 'album 7'")" 1 "a has album 7 again"
repl_same "after the herd repair" a b
run_repctl compare h
is "$RC" 0 "compare h clean"

done_testing
