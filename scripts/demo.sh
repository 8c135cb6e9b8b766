#!/usr/bin/env bash
# demo.sh start|stop|clean - the README's quick start, on this machine.
#
# start: three throw-away PostgreSQL 15 clusters on loopback (the metadata
#   database and two nodes, "cavaforgepad" and "jukebox", each with a small
#   Rails-like archive_production database), then the archive guide's
#   Part 3 done with repctl: install, add database x2, add all tables per
#   node, the exclusion step, a two-way pair of syncs with bucardo_latest,
#   partition sequences (the bigserial keys), validate, start the
#   coordinator, change a row on one node and show it on the other, and
#   print `repctl status`.  A second run reuses what is
#   there.  State lives in .demo/ of the checkout (the clusters' data too,
#   when the PostgreSQL user can reach it; otherwise under /var/tmp with a
#   symlink in .demo/).
# stop:  stop the coordinator and the clusters started by `start`.
# clean: stop, then delete .demo/ and the clusters' data.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEMO=$ROOT/.demo
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
REPCTL=$ROOT/repctl
PORT_META=${DEMO_PORT_META:-54391}
PORT_CAVA=${DEMO_PORT_CAVA:-54392}
PORT_JUKE=${DEMO_PORT_JUKE:-54393}
export REPCTL_CONFIG=$DEMO/repctl.conf
unset REPCTL_META REPCTL_STATE_DIR REPCTL_NODE

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

pg_user() {
	if [ "$(id -u)" -eq 0 ]; then
		id -u repctldemo >/dev/null 2>&1 ||
			useradd --system --no-create-home --shell /usr/sbin/nologin repctldemo
		echo repctldemo
	else
		id -un
	fi
}

as_pg() {
	local u
	u=$(pg_user)
	if [ "$(id -u)" -eq 0 ]; then (cd / && runuser -u "$u" -- "$@"); else "$@"; fi
}

pg_root() {
	# where the clusters live: .demo/pg when the PostgreSQL user can reach it
	if [ -e "$DEMO/pg" ]; then
		readlink -f "$DEMO/pg"
		return
	fi
	mkdir -p "$DEMO"
	if as_pg test -x "$DEMO" 2>/dev/null && as_pg test -w "$DEMO" 2>/dev/null; then
		mkdir -p "$DEMO/pg"
	else
		local alt
		alt=/var/tmp/repctl-demo-$(printf '%s' "$ROOT" | md5sum | cut -c1-8)
		mkdir -p "$alt"
		ln -sfn "$alt" "$DEMO/pg"
	fi
	chown "$(pg_user)" "$(readlink -f "$DEMO/pg")"
	readlink -f "$DEMO/pg"
}

cluster_up() { # name port
	local dir
	dir=$(pg_root)/$1
	if [ ! -f "$dir/PG_VERSION" ]; then
		as_pg "$PG_BIN/initdb" -A trust -U postgres -E UTF8 --locale=C.UTF-8 -D "$dir" >/dev/null
		cat >>"$dir/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $2
unix_socket_directories = '$dir'
max_connections = 50
shared_buffers = 32MB
CONF
	fi
	if ! as_pg "$PG_BIN/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
		as_pg "$PG_BIN/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 start >/dev/null
	fi
	echo "cluster $1 up on 127.0.0.1:$2"
}

cluster_down() {
	local dir
	dir=$(readlink -f "$DEMO/pg" 2>/dev/null)/$1
	[ -f "$dir/postmaster.pid" ] || return 0
	as_pg "$PG_BIN/pg_ctl" -D "$dir" -m fast -w stop >/dev/null && echo "cluster $1 stopped"
}

psql_at() { # port db sql (notices off: "already exists, skipping" on a rerun)
	PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 -At -h 127.0.0.1 -p "$1" -U postgres -d "$2" -c "$3"
}

ARCHIVE_SCHEMA="
CREATE TABLE IF NOT EXISTS artists (id bigserial PRIMARY KEY, name text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS albums (id bigserial PRIMARY KEY, artist_id bigint REFERENCES artists,
  title text NOT NULL, year int, created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS songs (id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  album_id bigint REFERENCES albums, title text NOT NULL, duration_s int,
  created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS schema_migrations (version varchar PRIMARY KEY);
CREATE TABLE IF NOT EXISTS ar_internal_metadata (key varchar PRIMARY KEY, value varchar,
  created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL);
CREATE TABLE IF NOT EXISTS active_storage_blobs (id bigserial PRIMARY KEY, key varchar NOT NULL,
  filename varchar NOT NULL, byte_size bigint NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
"
SEED="
INSERT INTO artists (id, name) VALUES (1, 'Nina Simone'), (2, 'Miles Davis') ON CONFLICT DO NOTHING;
INSERT INTO albums (id, artist_id, title, year) VALUES (1, 1, 'Pastel Blues', 1965),
  (2, 2, 'Kind of Blue', 1959) ON CONFLICT DO NOTHING;
INSERT INTO schema_migrations VALUES ('20240101000000') ON CONFLICT DO NOTHING;
"

start() {
	[ -x "$REPCTL" ] || { echo "demo: build first (make)" >&2; exit 1; }
	mkdir -p "$DEMO/state"
	chmod 700 "$DEMO/state"
	say "PostgreSQL clusters on loopback (data in $(pg_root))"
	cluster_up meta "$PORT_META"
	cluster_up cavaforgepad "$PORT_CAVA"
	cluster_up jukebox "$PORT_JUKE"
	for p in "$PORT_CAVA" "$PORT_JUKE"; do
		[ "$(psql_at "$p" postgres "SELECT count(*) FROM pg_database WHERE datname = 'archive_production'")" = 1 ] ||
			psql_at "$p" postgres "CREATE DATABASE archive_production"
		psql_at "$p" archive_production "$ARCHIVE_SCHEMA"
		psql_at "$p" archive_production "$SEED"
	done
	[ "$(psql_at "$PORT_META" postgres "SELECT count(*) FROM pg_database WHERE datname = 'repctl'")" = 1 ] ||
		psql_at "$PORT_META" postgres "CREATE DATABASE repctl"
	cat >"$REPCTL_CONFIG" <<CONF
# written by scripts/demo.sh
meta = "host=127.0.0.1 port=$PORT_META dbname=repctl user=postgres";
node = "cavaforgepad";
state_dir = "$DEMO/state";
sync_interval = 10;
CONF
	say "repctl, following the archive guide (REPCTL_CONFIG=$REPCTL_CONFIG)"
	run "$REPCTL" install
	for n in cavaforgepad:$PORT_CAVA jukebox:$PORT_JUKE; do
		if "$REPCTL" list databases | grep -q "^${n%%:*} "; then
			echo "node ${n%%:*} already registered"
		else
			run "$REPCTL" add database "${n%%:*}" dbname=archive_production host=127.0.0.1 \
				port="${n##*:}" user=postgres
		fi
	done
	run "$REPCTL" add all tables --herd=archive_herd --db=cavaforgepad
	run "$REPCTL" add all tables --herd=archive_herd --db=jukebox
	for n in cavaforgepad jukebox; do
		for t in public.schema_migrations public.ar_internal_metadata; do
			if "$REPCTL" list tables --herd=archive_herd --db="$n" | grep -q " ${t}[[:space:]]"; then
				run "$REPCTL" remove table "$t" --db="$n"
			fi
		done
	done
	for s in "cava_to_juke cavaforgepad:source,jukebox:target" \
		"juke_to_cava jukebox:source,cavaforgepad:target"; do
		set -- $s
		if "$REPCTL" list syncs | grep -q "^$1 "; then
			echo "sync $1 already exists"
		else
			run "$REPCTL" add sync "$1" relgroup=archive_herd dbs="$2" conflict_strategy=bucardo_latest
		fi
	done
	run "$REPCTL" partition sequences cava_to_juke
	run "$REPCTL" validate
	if "$REPCTL" status | grep -q '^coordinator: running'; then
		run "$REPCTL" reload
	else
		run "$REPCTL" start
	fi
	say "a change on cavaforgepad shows up on jukebox"
	local title
	title="Test Song Cava $(date +%H:%M:%S)"
	run psql_at "$PORT_CAVA" archive_production \
		"INSERT INTO songs (album_id, title, duration_s) VALUES (1, '$title', 180)"
	local i
	for i in $(seq 1 100); do
		[ "$(psql_at "$PORT_JUKE" archive_production "SELECT count(*) FROM songs WHERE title = '$title'")" = 1 ] && break
		sleep 0.1
	done
	run psql_at "$PORT_JUKE" archive_production "SELECT title, updated_at FROM songs WHERE title = '$title'"
	say "and back: an update on jukebox reaches cavaforgepad"
	run psql_at "$PORT_JUKE" archive_production \
		"UPDATE albums SET year = year + 1, updated_at = now() WHERE id = 2"
	for i in $(seq 1 100); do
		[ "$(psql_at "$PORT_CAVA" archive_production "SELECT year FROM albums WHERE id = 2")" = \
			"$(psql_at "$PORT_JUKE" archive_production "SELECT year FROM albums WHERE id = 2")" ] && break
		sleep 0.1
	done
	run psql_at "$PORT_CAVA" archive_production "SELECT id, title, year FROM albums WHERE id = 2"
	say "status"
	run "$REPCTL" status
	cat <<MSG

The demo is running.  Try it yourself:
  export REPCTL_CONFIG=$REPCTL_CONFIG
  ./repctl status; ./repctl list syncs; ./repctl conflicts
  psql -h 127.0.0.1 -p $PORT_CAVA -U postgres archive_production   # cavaforgepad
  psql -h 127.0.0.1 -p $PORT_JUKE -U postgres archive_production   # jukebox
Stop it with: make demo-stop   (data is kept; 'bash scripts/demo.sh clean' deletes it)
MSG
}

stop() {
	if [ -f "$REPCTL_CONFIG" ] && [ -x "$REPCTL" ]; then "$REPCTL" stop || true; fi
	[ -e "$DEMO/pg" ] || { echo "demo: nothing to stop"; return 0; }
	cluster_down jukebox
	cluster_down cavaforgepad
	cluster_down meta
}

clean() {
	stop
	if [ -L "$DEMO/pg" ]; then rm -rf "$(readlink -f "$DEMO/pg")"; fi
	rm -rf "$DEMO"
	echo "demo: removed $DEMO"
}

case "${1:-start}" in
start) start ;;
stop) stop ;;
clean) clean ;;
*) echo "usage: demo.sh start|stop|clean" >&2; exit 2 ;;
esac
