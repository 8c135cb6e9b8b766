#!/usr/bin/env bash
# t_archive_guide.sh - the archive guide's Part 3, command by command, with
# repctl on three nodes (cavaforgepad, jukebox, client2) holding a
# Rails-like archive_production of 20 tables (bigint and uuid keys, foreign
# keys, updated_at everywhere but the active_storage_* tables and
# schema_migrations).  Proves, with the coordinator running: the guide's
# commands work as written (Bucardo spellings), a star of pairs through the
# hub carries a change from one client to the other, the exclusion step
# (remove table + reload) stops one table while the rest flows, tables
# without updated_at replicate, and a full mesh sync works the same way.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib/common.sh"
. "$HERE/lib/pg.sh"

SCHEMA="
CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE TABLE users (id bigserial PRIMARY KEY, email text NOT NULL, name text,
  created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE artists (id bigserial PRIMARY KEY, name text NOT NULL, bio text,
  created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE genres (id bigserial PRIMARY KEY, name text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE albums (id bigserial PRIMARY KEY, artist_id bigint REFERENCES artists,
  genre_id bigint REFERENCES genres, title text NOT NULL, year int, cover bytea,
  created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE songs (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), album_id bigint REFERENCES albums,
  title text NOT NULL, track int, duration numeric(8,2), lyrics text, tags text[],
  created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE playlists (id bigserial PRIMARY KEY, user_id bigint REFERENCES users, name text,
  created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE playlist_songs (playlist_id bigint REFERENCES playlists, song_id uuid REFERENCES songs,
  position int, created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (playlist_id, song_id));
CREATE TABLE plays (id bigserial PRIMARY KEY, song_id uuid REFERENCES songs, user_id bigint,
  played_at timestamptz, created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE favorites (id bigserial PRIMARY KEY, user_id bigint, song_id uuid,
  created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE tags (id bigserial PRIMARY KEY, name text, created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE taggings (id bigserial PRIMARY KEY, tag_id bigint REFERENCES tags, song_id uuid,
  created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE settings (key varchar PRIMARY KEY, value jsonb, created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE system_settings (id serial PRIMARY KEY, key varchar UNIQUE NOT NULL, value text NOT NULL,
  description text, created_at timestamp, updated_at timestamp);
CREATE TABLE radio_stations (id bigserial PRIMARY KEY, name text, url text,
  created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE sessions (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), user_id bigint, data jsonb,
  created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE active_storage_blobs (id bigserial PRIMARY KEY, key varchar NOT NULL, filename varchar NOT NULL,
  content_type varchar, metadata text, service_name varchar NOT NULL, byte_size bigint NOT NULL,
  checksum varchar, created_at timestamp NOT NULL);
CREATE TABLE active_storage_attachments (id bigserial PRIMARY KEY, name varchar NOT NULL,
  record_type varchar NOT NULL, record_id bigint NOT NULL, blob_id bigint NOT NULL REFERENCES active_storage_blobs,
  created_at timestamp NOT NULL);
CREATE TABLE active_storage_variant_records (id bigserial PRIMARY KEY, blob_id bigint NOT NULL
  REFERENCES active_storage_blobs, variation_digest varchar NOT NULL);
CREATE TABLE schema_migrations (version varchar PRIMARY KEY);
CREATE TABLE ar_internal_metadata (key varchar PRIMARY KEY, value varchar,
  created_at timestamp NOT NULL, updated_at timestamp NOT NULL);
INSERT INTO schema_migrations VALUES ('20240101000000');
INSERT INTO ar_internal_metadata VALUES ('environment', 'production', now(), now());
"
NODES=(cavaforgepad jukebox client2)
for n in meta "${NODES[@]}"; do pg_start "$n"; done
for n in "${NODES[@]}"; do
	pg_createdb "$n" archive_production
	pg_psql "$n" archive_production -q -c "$SCHEMA" >/dev/null
done
export REPCTL_META="$(pg_conninfo meta) dbname=postgres" REPCTL_STATE_DIR=$TEST_TMP/state
unset REPCTL_CONFIG REPCTL_NODE
cat >"$TEST_TMP/repctl.conf" <<CONF
sync_interval = 5;
retry = { min = 1; max = 2; };
CONF
export REPCTL_CONFIG=$TEST_TMP/repctl.conf
on_failure_push "tail -n 60 '$REPCTL_STATE_DIR/repctl.log' 2>/dev/null | sed 's/^/# log: /'"

rc() { run_repctl "$@"; is "$RC" 0 "repctl $* (stderr: ${ERR:0:300})"; }

rc install
for n in "${NODES[@]}"; do
	rc add database "$n" dbname=archive_production host=127.0.0.1 port="$(pg_port "$n")" user=postgres
done
for n in "${NODES[@]}"; do
	rc add all tables --herd=archive_herd --db="$n"
	like "$OUT" "20 table\\(s\\) added" "all 20 tables registered on $n"
done
rc add sync cava_to_juke relgroup=archive_herd dbs=cavaforgepad:source,jukebox:target conflict_strategy=bucardo_latest
rc add sync juke_to_cava relgroup=archive_herd dbs=jukebox:source,cavaforgepad:target conflict_strategy=bucardo_latest
rc add sync cava_to_client2 relgroup=archive_herd dbs=cavaforgepad:source,client2:target conflict_strategy=bucardo_latest
rc add sync client2_to_cava relgroup=archive_herd dbs=client2:source,cavaforgepad:target conflict_strategy=bucardo_latest
# the bigserial keys: each node its own residue (cavaforgepad 1, jukebox 2, client2 3)
rc partition sequences cava_to_juke
rc partition sequences cava_to_client2
like "$OUT" "node 'client2': residue 3" "client2 gets a residue of its own"
rc validate
rc start
cleanup_push "'$REPCTL' stop >/dev/null 2>&1 || true"

q() { pg_sql "$1" archive_production "$2"; }
same() { # table: identical on every node
	local a b c
	a=$(q cavaforgepad "SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM $1 t")
	b=$(q jukebox "SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM $1 t")
	c=$(q client2 "SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM $1 t")
	[[ $a == "$b" && $b == "$c" ]]
}

# Part 4 of the guide: insert on cavaforgepad, see it on the clients
q cavaforgepad "INSERT INTO artists (id, name) VALUES (1, 'Nina Simone');
  INSERT INTO albums (id, artist_id, title, year) VALUES (1, 1, 'Pastel Blues', 1965);
  INSERT INTO songs (album_id, title, track, duration, tags) VALUES (1, 'Test Song Cava', 1, 210.5, '{jazz,soul}')"
ok wait_until 15 same songs
ok wait_until 15 same albums

# a change on one client reaches the other through the hub
q jukebox "INSERT INTO songs (album_id, title) VALUES (1, 'Test Song Juke');
  UPDATE albums SET year = 1966, updated_at = now() WHERE id = 1"
juke_on_client2() { [[ $(q client2 "SELECT count(*) FROM songs WHERE title = 'Test Song Juke'") == 1 ]]; }
ok wait_until 15 juke_on_client2
ok wait_until 15 same albums

# tables without updated_at replicate (change time decides conflicts)
q client2 "INSERT INTO active_storage_blobs (id, key, filename, service_name, byte_size, created_at)
  VALUES (100, 'k1', 'cover.jpg', 'local', 1234, now());
  INSERT INTO active_storage_attachments (name, record_type, record_id, blob_id, created_at)
  VALUES ('cover', 'Album', 1, 100, now())"
ok wait_until 15 same active_storage_blobs
ok wait_until 15 same active_storage_attachments

# the exclusion step, as written in the guide, then reload
for n in "${NODES[@]}"; do
	rc remove table public.schema_migrations --db="$n"
	rc remove table public.ar_internal_metadata --db="$n"
done
rc reload
# give the restarted workers their first run, then change both kinds of table
settled() { run_repctl status --json; [[ $RC == 0 ]] && ! grep -q '"health": "yellow"' <<<"$OUT"; }
ok wait_until 20 settled
q cavaforgepad "INSERT INTO schema_migrations VALUES ('20250101000000');
  INSERT INTO genres (id, name) VALUES (7, 'Bossa Nova')"
ok wait_until 15 same genres
is "$(q jukebox "SELECT count(*) FROM schema_migrations WHERE version = '20250101000000'")" 0 \
	"an excluded table no longer replicates"
no_capture() { [[ $(q jukebox "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'schema_migrations'::regclass AND NOT tgisinternal") == 0 ]]; }
ok no_capture

# no echo: once quiet, the counters of every table stay equal everywhere
rc status
like "$OUT" "cava_to_juke +running" "status lists the syncs as running"
unlike "$OUT" " red" "no sync is red"
for t in users artists genres albums songs playlists playlist_songs plays favorites tags \
	taggings settings system_settings radio_stations sessions active_storage_blobs \
	active_storage_attachments active_storage_variant_records; do
	ok same "$t"
done

# a full mesh of the three nodes in one multi-source sync works the same way
rc stop
for s in cava_to_juke juke_to_cava cava_to_client2 client2_to_cava; do rc remove sync "$s"; done
rc add sync archive relgroup=archive_herd dbs=cavaforgepad:source,jukebox:source,client2:source conflict_strategy=latest
rc start
q client2 "INSERT INTO users (id, email) VALUES (5, 'c2@example.org')"
q jukebox "INSERT INTO users (id, email) VALUES (6, 'j@example.org')"
ok wait_until 15 same users
users_n() { [[ $(q cavaforgepad "SELECT count(*) FROM users") == 2 ]]; }
ok users_n
done_testing
