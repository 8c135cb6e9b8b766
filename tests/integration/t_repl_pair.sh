#!/usr/bin/env bash
# tests/integration/t_repl_pair.sh - a pair of one-way syncs back and forth
# (the archive guide's Bucardo spelling), run in the foreground with
# `repctl run`.
#
# Proves:
#  - rows of every common type replicate exactly (ordered checksums equal,
#    and each value read back on the other node): bigint, uuid, text with
#    quotes / newlines / tabs / backslashes / unicode, numeric(12,4) (NaN,
#    negative), timestamptz (microseconds, infinity), date, bytea (NUL
#    bytes), jsonb, json (kept verbatim, duplicate keys and spacing),
#    int[] / text[] (NULL elements, quotes), an enum with a quote in a label,
#    NULLs everywhere, boolean; a composite primary key; a table named
#    "Weird ""name""" with a column "B c"; a table without updated_at;
#  - the run's I/U/D counts are the rows written (no double writes);
#  - inserts, updates (including a primary-key change, simple and
#    composite), deletes, TRUNCATE and TRUNCATE ... CASCADE on an FK parent,
#    on either node, arrive on the other after one run of both syncs;
#  - no echo storm: after every phase a further round of both syncs reports
#    I/U/D 0/0/0 and leaves every shadow table (vector, xid, time,
#    tombstone) exactly as it was.
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
is "$RC" 0 "add sync ab (Bucardo spelling)"
run_repctl add sync ba relgroup=h dbs=b:source,a:target conflict_strategy=bucardo_latest
is "$RC" 0 "add sync ba (Bucardo spelling)"

# both: run ab then ba; the runs must be good.  Sets AB_IUD / BA_IUD.
both() {
	repl_run ab
	is "$RUN_RC" 0 "$1: run ab is good"
	AB_IUD="$RUN_I/$RUN_U/$RUN_D"
	repl_run ba
	is "$RUN_RC" 0 "$1: run ba is good"
	BA_IUD="$RUN_I/$RUN_U/$RUN_D"
}

# no_echo PHASE: a further round writes nothing, on the tables or the shadows.
no_echo() {
	local sa sb
	sa=$(repl_shadow_sums a)
	sb=$(repl_shadow_sums b)
	repl_run ab
	is "$RUN_RC/$RUN_I/$RUN_U/$RUN_D/$RUN_C" 0/0/0/0/0 "$1: a further run of ab writes nothing"
	repl_run ba
	is "$RUN_RC/$RUN_I/$RUN_U/$RUN_D/$RUN_C" 0/0/0/0/0 "$1: a further run of ba writes nothing"
	is "$(repl_shadow_sums a)" "$sa" "$1: shadow tables on a unchanged (no echo)"
	is "$(repl_shadow_sums b)" "$sb" "$1: shadow tables on b unchanged (no echo)"
}

# ---- phase 1: inserts of every type on a, others on b --------------------------------
pg_psql a "$REPL_DB" <<'SQL'
INSERT INTO kitchen_sink (id, u, t, n, ts, d, b, jb, j, ia, ta, m, flag, updated_at) VALUES
 (1, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', E'it''s "quoted"\nline 2\ttab \\ backslash',
  12345678.1234, '2024-02-29 23:59:59.123456+05:30', '2024-02-29', '\x00ff00deadbeef',
  '{"k": [1, 2, {"n": null}], "ü": "ß ✓"}', '{"a": 1,   "a": 2}', '{1,NULL,3}',
  '{"a b","c\"d",NULL,""}', 'it''s "fine"', true, '2024-01-01 00:00:00+00'),
 (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '2024-01-01 00:00:00+00'),
 (3, 'ffffffff-ffff-ffff-ffff-ffffffffffff', 'héllo wörld ✓ 日本語 🎵', -0.0001, 'infinity',
  '0001-01-01', '\x', '[]', '"just a string"', '{}', '{}', 'sad', false, now()),
 (4, '00000000-0000-0000-0000-000000000000', '', 'NaN', '-infinity', 'infinity', '\x5c',
  'null', 'null', '{{1,2},{3,4}}', '{"{","}",","}', 'happy', NULL, now());
INSERT INTO songs (id, title, plays) SELECT g, 'song ' || g, g * 10 FROM generate_series(1, 50) g;
INSERT INTO albums (id, name) VALUES
 ('11111111-1111-1111-1111-111111111111', 'Kind of Blue'),
 ('22222222-2222-2222-2222-222222222222', NULL);
INSERT INTO playlist_items (playlist_id, position, song_id)
 SELECT p, pos, p * 100 + pos FROM generate_series(1, 3) p, generate_series(1, 4) pos;
INSERT INTO "Weird ""name""" (a, b, "B c", updated_at) VALUES
 (1, 'x', 'first "row"', now()), (1, 'y''s', NULL, NULL), (2, E'new\nline', 'ü', now());
INSERT INTO tags (id, name) VALUES (1, 'jazz'), (2, 'modal'), (3, NULL);
INSERT INTO artists (id, name) VALUES (1, 'Miles'), (2, 'Bill');
INSERT INTO artist_links (id, artist_id, url) VALUES (1, 1, 'http://a/1'), (2, 1, 'http://a/2'), (3, 2, 'http://b/1');
INSERT INTO schema_migrations VALUES ('20240101000000'), ('20240202000000');
INSERT INTO ar_internal_metadata VALUES ('environment', 'production', '2024-01-01 10:00:00.123456', '2024-01-01 10:00:00.123456');
SQL
# 4 + 50 + 2 + 12 + 3 + 3 + 2 + 3 + 2 + 1 rows
inserted_a=82
pg_psql b "$REPL_DB" <<'SQL'
INSERT INTO songs (id, title) SELECT g, 'b song ' || g FROM generate_series(101, 110) g;
INSERT INTO tags (id, name) VALUES (10, 'from b'), (11, E'tab\there');
INSERT INTO kitchen_sink (id, t, n, ia) VALUES (100, 'b''s row', 0.5, '{-1}');
SQL
inserted_b=13

both "inserts"
is "$AB_IUD" "$inserted_a/0/0" "ab wrote exactly the $inserted_a rows inserted on a"
is "$BA_IUD" "$inserted_b/0/0" "ba wrote exactly the $inserted_b rows inserted on b"
repl_same "inserts" a b
is "$(repl_val b 'SELECT count(*) FROM kitchen_sink')" 5 "kitchen_sink has 5 rows on b"
is "$(repl_val a 'SELECT count(*) FROM songs')" 60 "songs has 60 rows on a"
# every value, read back on the other node, column by column
for col in u t n ts d b jb j ia ta m flag updated_at; do
	q="SELECT string_agg(coalesce($col::text, '<NULL>'), ' ; ' ORDER BY id) FROM kitchen_sink"
	is "$(repl_val b "$q")" "$(repl_val a "$q")" "kitchen_sink.$col identical on b"
done
is "$(repl_val b "SELECT j::text FROM kitchen_sink WHERE id = 1")" '{"a": 1,   "a": 2}' \
	"json is kept verbatim (spacing, duplicate keys)"
is "$(repl_val b "SELECT encode(b, 'hex') FROM kitchen_sink WHERE id = 1")" 00ff00deadbeef \
	"bytea with NUL bytes"
is "$(repl_val b "SELECT t FROM kitchen_sink WHERE id = 3")" 'héllo wörld ✓ 日本語 🎵' "unicode text"
is "$(repl_val b "SELECT \"B c\" FROM \"Weird \"\"name\"\"\" WHERE a = 1 AND b = 'x'")" \
	'first "row"' 'table "Weird ""name""", column "B c"'
is "$(repl_val a "SELECT name FROM tags WHERE id = 11")" $'tab\there' "b's rows arrived on a"
no_echo "inserts"

# ---- phase 2: updates, key changes and deletes on both nodes ----------------------------
pg_psql a "$REPL_DB" <<'SQL'
UPDATE kitchen_sink SET t = t || E'\n(updated)', n = n + 1, jb = jsonb_build_object('x', 'y', 'prev', jb),
       ia = array_append(ia, 7), flag = NOT coalesce(flag, false), updated_at = clock_timestamp()
 WHERE id IN (1, 3);
UPDATE kitchen_sink SET u = gen_random_uuid(), ta = '{z}', m = 'ok', updated_at = clock_timestamp() WHERE id = 2;
UPDATE songs SET id = 1001, updated_at = clock_timestamp() WHERE id = 1;
UPDATE songs SET plays = plays + 1, updated_at = clock_timestamp() WHERE id BETWEEN 10 AND 19;
UPDATE playlist_items SET position = position + 10, updated_at = clock_timestamp() WHERE playlist_id = 2;
UPDATE "Weird ""name""" SET "B c" = 'changed "B c"', b = 'x2', updated_at = clock_timestamp() WHERE a = 1 AND b = 'x';
UPDATE tags SET name = 'cool jazz' WHERE id = 1;
DELETE FROM songs WHERE id BETWEEN 40 AND 44;
DELETE FROM albums WHERE name IS NULL;
SQL
pg_psql b "$REPL_DB" <<'SQL'
UPDATE songs SET title = 'b: ' || title, updated_at = clock_timestamp() WHERE id BETWEEN 101 AND 105;
UPDATE songs SET id = 2001, updated_at = clock_timestamp() WHERE id = 110;
UPDATE kitchen_sink SET b = '\x0102', d = '1999-12-31', updated_at = clock_timestamp() WHERE id = 4;
UPDATE tags SET id = 12 WHERE id = 11;
DELETE FROM songs WHERE id IN (2, 3, 106);
DELETE FROM playlist_items WHERE playlist_id = 3 AND position = 4;
DELETE FROM "Weird ""name""" WHERE a = 2;
SQL
both "updates and deletes"
# a: I 1001 + 4 moved playlist items + (1,x2); U 3 sinks + 10 songs + 1 tag;
#    D song 1 + 5 songs + 4 old playlist keys + (1,x) + 1 album
is "$AB_IUD" "6/14/12" "ab wrote exactly a's changes (key changes = insert + delete)"
# b: I 2001 + tag 12; U 5 songs + 1 sink; D 110 + tag 11 + 3 songs + 1 item + 1 weird
is "$BA_IUD" "2/6/7" "ba wrote exactly b's changes"
repl_same "updates and deletes" a b
is "$(repl_val b 'SELECT count(*) FROM songs WHERE id IN (1, 1001)')" 1 \
	"primary key change: only the new key exists on b"
is "$(repl_val b 'SELECT id FROM songs WHERE id IN (1, 1001)')" 1001 "... and it is 1001"
is "$(repl_val a 'SELECT count(*) FROM songs WHERE id IN (110, 2001)')" 1 \
	"primary key change on b: only the new key on a"
is "$(repl_val b 'SELECT string_agg(position::text, $$,$$ ORDER BY position) FROM playlist_items WHERE playlist_id = 2')" \
	11,12,13,14 "composite key change arrived"
is "$(repl_val b "SELECT \"B c\" FROM \"Weird \"\"name\"\"\" WHERE a = 1 AND b = 'x2'")" \
	'changed "B c"' 'weird table: key and "B c" changed'
is "$(repl_val a 'SELECT count(*) FROM songs WHERE id IN (2, 3, 106)')" 0 "deletes on b arrived on a"
is "$(repl_val b 'SELECT count(*) FROM songs WHERE id BETWEEN 40 AND 44')" 0 "deletes on a arrived on b"
is "$(repl_val a 'SELECT name FROM tags WHERE id = 12')" $'tab\there' "key change of a table without updated_at"
no_echo "updates and deletes"

# ---- phase 3: TRUNCATE on b, TRUNCATE ... CASCADE on a ------------------------------------
before_tags=$(repl_val a 'SELECT count(*) FROM tags')
pg_sql b "$REPL_DB" 'TRUNCATE tags'
pg_sql a "$REPL_DB" 'TRUNCATE artists CASCADE'
both "truncate"
note "truncate: ab $AB_IUD, ba $BA_IUD"
ok test "$before_tags" -gt 0
is "$(repl_val a 'SELECT count(*) FROM tags')" 0 "TRUNCATE tags on b arrived on a"
is "$(repl_val b 'SELECT count(*) FROM artists')" 0 "TRUNCATE artists CASCADE on a: artists empty on b"
is "$(repl_val b 'SELECT count(*) FROM artist_links')" 0 "... and the cascaded artist_links too"
repl_same "truncate" a b
no_echo "truncate"

# ---- phase 4: the same keys come back after the truncate -----------------------------------
pg_sql b "$REPL_DB" "INSERT INTO artists VALUES (1, 'Miles again', now()); INSERT INTO artist_links VALUES (1, 1, 'http://again', now())"
pg_sql a "$REPL_DB" "INSERT INTO tags VALUES (1, 'back')"
both "reinsert after truncate"
is "$AB_IUD" "1/0/0" "ab: the re-inserted tag"
is "$BA_IUD" "2/0/0" "ba: the re-inserted artist and link"
repl_same "reinsert after truncate" a b
no_echo "reinsert after truncate"

# ---- phase 5: a no-op update (same values) writes nothing anywhere ---------------------
pg_sql a "$REPL_DB" 'UPDATE songs SET title = title WHERE id BETWEEN 20 AND 29'
both "no-op update"
is "$AB_IUD" "0/0/0" "an update that changes nothing is not written on b"
repl_same "no-op update" a b
no_echo "no-op update"

done_testing
