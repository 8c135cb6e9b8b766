#!/usr/bin/env bash
# t_onboard.sh - repctl onboard / offboard on a running fleet, on loopback.
#
# The fleet: cavaforgepad (the coordinator's own node, REPCTL_NODE) and
# jukebox with a pair of syncs and a folder "music" (jukebox's copy behind
# a real sshd), the coordinator running.  Then an empty third cluster
# (client2: database archive_production, only one table a migration
# already made, zz_notes) and its own music directory behind the same sshd.
#
# Proves:
#  - each reachability failure is refused with its own diagnosis and
#    changes nothing: port closed (connection refused), authentication
#    failed (scram, wrong pass=; the pg_hba.conf line with 127.0.0.1/32),
#    no such database (how to create it); an unknown SSH host key without
#    --accept-host-key (the fingerprint is printed) or with a wrong one;
#    timeout and no route cannot be made on loopback (skipped);
#  - --dry-run prints the plan (to do) and changes nothing: metadata,
#    secrets, known hosts, the client's catalog;
#  - SIGKILL halfway, twice: once while the client's capture is being
#    installed (its tables exist, no sync yet: a lock held on client2's
#    zz_notes stops it there), once during the initial copy (big is copied,
#    a lock on the primary's zz_notes stops the copy of the last table);
#    each rerun continues, and the third completes with nothing doubled:
#    two syncs, one registration per table, one folder membership, one
#    known-hosts line, row counts equal;
#  - after it, client2 has exactly the herd's tables (not the excluded
#    Rails bookkeeping ones) with the enum and domain types, the same rows
#    as the primary (md5 per table) and the same music files; a rerun says
#    every step is done;
#  - under the running coordinator, reloaded by onboard: a row inserted on
#    jukebox reaches client2 through the hub, one inserted on client2
#    reaches the primary and jukebox; a file added on jukebox reaches
#    client2's folder;
#  - offboard client2: its syncs, folder membership, registrations and node
#    are gone, its rows and files stay, no schema repctl or repctl trigger
#    is left on it, and the fleet keeps converging without it.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/common.sh"
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/pg.sh"
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/fixtures.sh"
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/sshd.sh"

DB=archive_production
SCHEMA="
CREATE TYPE public.mood AS ENUM ('sad', 'ok', 'it''s \"fine\"');
CREATE DOMAIN public.rating AS smallint CHECK (VALUE BETWEEN 0 AND 5);
CREATE TABLE public.artists (id bigserial PRIMARY KEY, name text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE public.albums (id bigserial PRIMARY KEY, artist_id bigint REFERENCES public.artists,
  title text NOT NULL, mood public.mood, moods public.mood[], stars public.rating,
  updated_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX albums_title ON public.albums (title);
CREATE TABLE public.songs (id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  album_id bigint REFERENCES public.albums ON DELETE CASCADE, title text NOT NULL, track int,
  updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE public.playlist_items (playlist_id bigint, position int, song_id uuid,
  updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (playlist_id, position));
CREATE TABLE public.big (id bigint PRIMARY KEY, payload text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now());
CREATE SCHEMA archive;
CREATE TABLE archive.\"Old Songs\" (id int PRIMARY KEY, title text);
CREATE TABLE public.zz_notes (id bigint PRIMARY KEY, note text, updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE public.schema_migrations (version varchar PRIMARY KEY);
CREATE TABLE public.ar_internal_metadata (key varchar PRIMARY KEY, value varchar,
  created_at timestamp NOT NULL, updated_at timestamp NOT NULL);
"
DATA="
INSERT INTO artists (id, name) SELECT g, 'artist ' || g FROM generate_series(1, 20) g;
INSERT INTO albums (id, artist_id, title, mood, moods, stars)
  SELECT g, 1 + g % 20, 'album ' || g, (ARRAY['sad', 'ok', 'it''s \"fine\"']::mood[])[1 + g % 3],
         ARRAY['ok', 'sad']::mood[], g % 6 FROM generate_series(1, 50) g;
INSERT INTO songs (album_id, title, track) SELECT 1 + g % 50, 'song ' || g, g % 12 FROM generate_series(1, 500) g;
INSERT INTO playlist_items (playlist_id, position, updated_at) SELECT g / 10, g % 10, now() FROM generate_series(1, 100) g;
INSERT INTO big (id, payload) SELECT g, repeat(md5(g::text), 6) FROM generate_series(1, 150000) g;
INSERT INTO archive.\"Old Songs\" SELECT g, 'old ' || g FROM generate_series(1, 10) g;
INSERT INTO zz_notes (id, note) SELECT g, 'note ' || g FROM generate_series(1, 5) g;
INSERT INTO schema_migrations VALUES ('20240101000000');
INSERT INTO ar_internal_metadata VALUES ('environment', 'production', now(), now());
"
# the herd's tables (the Rails bookkeeping tables are left out, as in the guide)
TABLES=(public.artists public.albums public.songs public.playlist_items public.big
	'archive."Old Songs"' public.zz_notes)

for n in meta cava juke c2; do pg_start "$n"; done
sshd_start n
SSHP=$(sshd_port n)
fx_env meta
REPCTL_NODE=cavaforgepad
export REPCTL_NODE
KH=$REPCTL_STATE_DIR/ssh/known_hosts
cat >"$TEST_TMP/repctl.conf" <<CONF
sync_interval = 3;
retry = { min = 1; max = 2; };
CONF
export REPCTL_CONFIG=$TEST_TMP/repctl.conf
on_failure_push "tail -n 80 '$REPCTL_STATE_DIR/repctl.log' 2>/dev/null | sed 's/^/# log: /'"
on_failure_push "[[ -r '$TEST_TMP/onb.out' ]] && sed 's/^/# onb.out: /' '$TEST_TMP/onb.out'"

q() { pg_sql "$1" "$DB" "$2"; }
rc() { run_repctl "$@"; is "$RC" 0 "repctl $* (stderr: ${ERR:0:400})"; }

for n in cava juke; do
	pg_createdb "$n" "$DB"
	pg_psql "$n" "$DB" -q <<<"$SCHEMA"
done
pg_psql cava "$DB" -q <<<"$DATA"
q cava "ANALYZE"
# client2: an empty database where one migration already ran (zz_notes, empty)
pg_createdb c2 "$DB"
q c2 "CREATE TABLE public.zz_notes (id bigint PRIMARY KEY, note text, updated_at timestamptz NOT NULL DEFAULT now())"

# ---- the running two-node fleet ---------------------------------------------------------
A=$TEST_TMP/music_cava B=$TEST_TMP/music_juke C=$TEST_TMP/music_client2
mkdir -p "$A/artist 1/album" "$B" "$C"
head -c 700000 /dev/urandom >"$A/artist 1/album/01 song.flac"
echo "liner notes" >"$A/notes.txt"

rc install
rc add database cavaforgepad dbname=$DB host=127.0.0.1 port="$(pg_port cava)" user=postgres
rc add database jukebox dbname=$DB host=127.0.0.1 port="$(pg_port juke)" user=postgres \
	ssh="$SSHD_USER@127.0.0.1:$SSHP" agent="$REPCTL"
for n in cavaforgepad jukebox; do
	rc add all tables --herd=archive_herd --db=$n --exclude='schema_migrations,ar_internal_metadata'
done
rc add sync cava_to_juke herd=archive_herd dbs=cavaforgepad:source,jukebox:target \
	conflict_strategy=latest onetimecopy=2
rc add sync juke_to_cava herd=archive_herd dbs=jukebox:source,cavaforgepad:target \
	conflict_strategy=latest
rc run cava_to_juke
rc run juke_to_cava
rc keygen
sshd_authorize n "$(cat "$REPCTL_STATE_DIR/ssh/id_ed25519.pub")"
rc trust jukebox --fingerprint="$(sshd_hostkey_fp n)"
rc add folder music "nodes=cavaforgepad:$A,jukebox:$B"
rc sync folder music
rc start
cleanup_push "'$REPCTL' stop >/dev/null 2>&1 || true"

sums() { # NODE: one md5 per herd table, rows in key order
	local t
	for t in "${TABLES[@]}"; do
		printf '%s %s\n' "$t" "$(q "$1" "SELECT count(*) || ' ' || md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM $t x")"
	done
}
tree_sum() { (cd "$1" && find . -path ./.repctl -prune -o -type f -print0 | sort -z | xargs -0 -r sha256sum); }
is "$(sums juke)" "$(sums cava)" "the fleet: jukebox has the primary's rows"
is "$(tree_sum "$B")" "$(tree_sum "$A")" "the fleet: jukebox has the primary's music"

# The metadata a command may change (run history, positions and node state
# are written by the running coordinator all along), the secrets file, the
# known hosts and client2's catalog: equal before/after = nothing changed.
state() {
	pg_psql meta postgres <<-'SQL'
		SELECT 'node ' || t::text FROM (SELECT name, conninfo, has_secret, ssh, agent, status FROM repctl.node) t ORDER BY 1;
		SELECT 'herd ' || t::text FROM repctl.herd t ORDER BY 1;
		SELECT 'herd_table ' || t::text FROM (SELECT herd, node, schema_name, table_name, pk_columns, conflict_column FROM repctl.herd_table) t ORDER BY 1;
		SELECT 'sync ' || t::text FROM (SELECT name, herd, strategy, conflict_column, interval_s, onetimecopy, status FROM repctl.sync) t ORDER BY 1;
		SELECT 'sync_node ' || t::text FROM repctl.sync_node t ORDER BY 1;
		SELECT 'folder ' || t::text FROM (SELECT name, ignore, status, interval_s FROM repctl.folder) t ORDER BY 1;
		SELECT 'folder_node ' || t::text FROM repctl.folder_node t ORDER BY 1;
	SQL
	local f
	for f in "$REPCTL_STATE_DIR/secrets" "$KH"; do
		if [[ -e $f ]]; then
			printf '%s %s\n' "$f" "$(sha256sum <"$f")"
		else
			printf '%s absent\n' "$f"
		fi
	done
	q c2 "SELECT 'c2 ' || c.oid::regclass::text || ' ' || c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') ORDER BY 1"
	q c2 "SELECT 'c2 trigger ' || tgname FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1"
}
unchanged() { # MSG BEFORE: assert state() is BEFORE
	local now
	now=$(state)
	if [[ $now == "$2" ]]; then
		pass "$1"
	else
		fail "$1" "$(diff <(printf '%s\n' "$2") <(printf '%s\n' "$now") || true)"
	fi
}

FP=$(sshd_hostkey_fp n)
C2=(client2 host=127.0.0.1 port="$(pg_port c2)" user=postgres dbname=$DB
	ssh="$SSHD_USER@127.0.0.1:$SSHP" agent="$REPCTL" --from cavaforgepad
	--folder=music path="$C")

# ---- reachability: each failure has its own diagnosis, nothing changes ------------------
# client2 sits behind the same sshd as jukebox: set the known hosts aside, so
# that its host key is unknown here as a new client's would be
mv "$KH" "$KH.fleet"
before=$(state)

fx_closed_port
run_repctl onboard client2 host=127.0.0.1 port="$FX_CLOSED_PORT" user=postgres dbname=$DB --from cavaforgepad
rc_nonzero "port closed: refused"
like "$ERR" "port closed: nothing accepts connections on 127.0.0.1 port $FX_CLOSED_PORT \\(connection refused\\)" \
	"port closed: says so, with the address"
like "$ERR" "hint: start PostgreSQL on the client" "port closed: says what to do"

# a role that must log in with a password (scram), first in pg_hba.conf
q c2 "SET password_encryption = 'scram-sha-256'; CREATE ROLE onbtest LOGIN PASSWORD 'right-pass'"
hba=$(pg_datadir c2)/pg_hba.conf
{ echo "host all onbtest 127.0.0.1/32 scram-sha-256"; cat "$hba"; } >"$hba.new"
cat "$hba.new" >"$hba"
q c2 "SELECT pg_reload_conf()" >/dev/null
run_repctl onboard client2 host=127.0.0.1 port="$(pg_port c2)" user=onbtest pass=wrong-pass dbname=$DB --from cavaforgepad
rc_nonzero "wrong password: refused"
like "$ERR" "authentication failed for user 'onbtest' on 127.0.0.1 port $(pg_port c2)" \
	"wrong password: authentication failed, for whom and where"
has_str "$ERR" "host $DB onbtest 127.0.0.1/32 scram-sha-256" \
	"wrong password: prints the pg_hba.conf line for the coordinator as the client sees it"
lacks_str "$OUT$ERR" "wrong-pass" "the password is not echoed"

run_repctl onboard client2 host=127.0.0.1 port="$(pg_port c2)" user=postgres dbname=nosuch --from cavaforgepad
rc_nonzero "wrong database: refused"
like "$ERR" "the database 'nosuch' does not exist on 127.0.0.1 port $(pg_port c2)" "wrong database: says so"
has_str "$ERR" "createdb -h 127.0.0.1 -p $(pg_port c2) -U postgres -O postgres nosuch" \
	"wrong database: says how to create it"
note "timeout and no route: not reproducible on loopback without sending traffic elsewhere (skipped)"

run_repctl onboard "${C2[@]}"
rc_nonzero "unknown SSH host key, no --accept-host-key, stdin not a terminal: refused"
has_str "$ERR" "is not known yet: $FP" "... with the fingerprint"
has_str "$ERR" "--accept-host-key=$FP" "... and the option to accept it"
run_repctl onboard "${C2[@]}" --accept-host-key=SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
rc_nonzero "a wrong --accept-host-key: refused"
has_str "$ERR" "not SHA256:AAAA" "... naming both fingerprints"
unchanged "the refused onboardings changed nothing" "$before"

# ---- dry run ----------------------------------------------------------------------------
run_repctl onboard "${C2[@]}" --accept-host-key="$FP" --dry-run
is "$RC" 0 "--dry-run exits 0"
like "$OUT" "\\[3/10\\] tables: to do: create 6 table\\(s\\)" "dry run: 6 tables to create (zz_notes exists)"
like "$OUT" "\\[4/10\\] node: to do: add database client2" "dry run: the node to add"
like "$OUT" "syncs: to do: add cavaforgepad_to_client2, client2_to_cavaforgepad" "dry run: the pair of syncs"
like "$OUT" "initial copy: to do" "dry run: the initial copy"
has_str "$OUT" "folder: to do: add client2:$C to folder 'music'" "dry run: the folder"
like "$OUT" "dry run: [0-9]+ step\\(s\\) to do; nothing was changed" "dry run: the summary"
unchanged "--dry-run changed nothing" "$before"

# ---- SIGKILL halfway, twice -------------------------------------------------------------
ONB_PID=''
cleanup_push "[[ -z \$ONB_PID ]] || kill -9 \$ONB_PID 2>/dev/null || true"
onboard_bg() {
	"$REPCTL" onboard "${C2[@]}" --accept-host-key="$FP" >"$TEST_TMP/onb.out" 2>&1 &
	ONB_PID=$!
}
onboard_kill() {
	kill -9 "$ONB_PID"
	wait "$ONB_PID" 2>/dev/null || true
	ONB_PID=''
}
# hold LOCK on CLUSTER's zz_notes in MODE in a background session (application_name onb_lock)
LOCK_PID=''
lock_hold() {
	pg_psql "$1" "$DB" -c "SET application_name = 'onb_lock'; BEGIN; LOCK TABLE public.zz_notes IN $2 MODE; SELECT pg_sleep(600)" >/dev/null 2>&1 &
	LOCK_PID=$!
	wait_until 20 lock_granted "$1"
}
lock_granted() { [[ $(q "$1" "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE a.application_name = 'onb_lock' AND l.relation = 'public.zz_notes'::regclass AND l.granted") == 1 ]]; }
lock_release() {
	q "$1" "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'onb_lock'" >/dev/null
	wait "$LOCK_PID" 2>/dev/null || true
	LOCK_PID=''
}
cleanup_push "[[ -z \$LOCK_PID ]] || kill \$LOCK_PID 2>/dev/null || true"
someone_waits() { [[ $(q "$1" "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'public.zz_notes'::regclass") -ge 1 ]]; }
msql() { pg_sql meta postgres "$1"; }

# 1: the capture of client2's zz_notes cannot be installed while we hold a lock on it
lock_hold c2 SHARE
ok lock_granted c2
onboard_bg
ok wait_until 60 someone_waits c2
is "$(q c2 "SELECT count(*) FROM pg_tables WHERE schemaname IN ('public', 'archive')")" 7 \
	"halfway 1: the client has its 7 tables (6 created, zz_notes was there)"
is "$(msql "SELECT count(*) FROM repctl.sync WHERE name LIKE '%client2%'")" 0 "halfway 1: no sync yet"
onboard_kill
lock_release c2
like "$(cat "$TEST_TMP/onb.out")" "recorded SHA256:" "halfway 1: the host key was recorded on the way"
is "$(cat "$KH")" "$(cat "$KH.fleet")" "the recorded key is the one 'repctl trust' recorded for jukebox (same sshd)"

# 2: the initial copy cannot read the primary's zz_notes (the last table) while we hold a lock on it
lock_hold cava 'ACCESS EXCLUSIVE'
onboard_bg
ok wait_until 120 someone_waits cava
like "$(cat "$TEST_TMP/onb.out")" "running sync cavaforgepad_to_client2" "halfway 2: in the initial copy"
is "$(msql "SELECT string_agg(name || ':' || status, ' ' ORDER BY name) FROM repctl.sync WHERE name LIKE '%client2%'")" \
	"cavaforgepad_to_client2:inactive client2_to_cavaforgepad:inactive" \
	"halfway 2: the syncs exist, inactive (the coordinator leaves them alone)"
is "$(q c2 "SELECT count(*) FROM big")" 0 "halfway 2: nothing of the copy is visible (one transaction)"
onboard_kill
lock_release cava
is "$(msql "SELECT count(*) FROM repctl.position WHERE target = 'client2'")" 0 \
	"after the kill: no position for the client (the copy did not commit)"

# 3: the same command completes
run_repctl onboard "${C2[@]}" --accept-host-key="$FP"
is "$RC" 0 "the rerun completes (stderr: ${ERR:0:600})"
printf '%s\n' "$OUT" | sed 's/^/#   /'
like "$OUT" "\\[1/10\\] client database: reachable" "rerun: step 1"
has_str "$OUT" "SSH host key: done: $FP" "rerun: the host key is already known"
like "$OUT" "\\[3/10\\] tables: done" "rerun: the tables are there"
like "$OUT" "syncs: done: cavaforgepad_to_client2, client2_to_cavaforgepad exist" "rerun: the syncs are there"
like "$OUT" "initial copy 'cavaforgepad' -> 'client2': 7 table\\(s\\), 150685 row\\(s\\)" "rerun: the copy, with its counts"
like "$OUT" "public.big +150000 row\\(s\\)" "rerun: per-table lines"
like "$OUT" "activated cavaforgepad_to_client2, client2_to_cavaforgepad" "rerun: the syncs activated"
has_str "$OUT" "added client2:$C to folder 'music'" "rerun: folder membership"
like "$OUT" "coordinator: reloaded" "rerun: the coordinator reloaded"

# nothing doubled, everything there
is "$(msql "SELECT string_agg(s.name || ':' || s.status || ':' || s.strategy || ':' || s.onetimecopy || ':' || (SELECT string_agg(n.node || '/' || n.role, ',' ORDER BY n.ord) FROM repctl.sync_node n WHERE n.sync = s.name), ' ' ORDER BY s.name) FROM repctl.sync s WHERE EXISTS (SELECT 1 FROM repctl.sync_node n WHERE n.sync = s.name AND n.node = 'client2')")" \
	"cavaforgepad_to_client2:active:latest:2:cavaforgepad/source,client2/target client2_to_cavaforgepad:active:latest:0:client2/source,cavaforgepad/target" \
	"exactly the pair of syncs, active, latest"
is "$(msql "SELECT count(*) FROM repctl.herd_table WHERE node = 'client2'")" \
	"$(msql "SELECT count(*) FROM repctl.herd_table WHERE node = 'cavaforgepad'")" \
	"client2 has the primary's table registrations, once each"
is "$(msql "SELECT count(*) FROM repctl.folder_node WHERE node = 'client2'")" 1 "one folder membership"
is "$(grep -c "127.0.0.1\\]:$SSHP" "$KH")" 1 "one known-hosts line for the sshd"
is "$(sums c2)" "$(sums cava)" "client2 has the primary's rows (count and md5 per table)"
is "$(q c2 "SELECT count(*) FROM pg_tables WHERE tablename IN ('schema_migrations', 'ar_internal_metadata')")" 0 \
	"the tables outside the herd are not created"
is "$(q c2 "SELECT string_agg(typname || ':' || typtype::text, ' ' ORDER BY typname) FROM pg_type WHERE typname IN ('mood', 'rating')")" \
	"mood:e rating:d" "the enum and the domain the tables use were created"
is "$(q c2 "SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = 'public.mood'::regtype")" \
	"sad,ok,it's \"fine\"" "... the enum's labels"
is "$(q c2 "SELECT count(*) FROM pg_indexes WHERE indexname = 'albums_title'")" 1 "indexes come with the schema"
is "$(q c2 "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'repctl_capture_%' AND tgrelid = 'public.big'::regclass")" 4 \
	"client2's own capture is installed (and not the primary's triggers)"
is "$(tree_sum "$C")" "$(tree_sum "$A")" "client2 has the primary's music files"

# a rerun: everything is done, nothing changes
s1=$(state)
run_repctl onboard "${C2[@]}" --accept-host-key="$FP"
is "$RC" 0 "a second complete run exits 0"
for s in "client database: reachable" "SSH host key: done" "tables: done" "node: done" "herd tables: done" \
	"syncs: done" "initial copy: done" "activation: done" "folder: 'client2' is in folder 'music'"; do
	has_str "$OUT" "$s" "second run: $s"
done
unchanged "a second complete run changes nothing" "$s1"

# ---- the fleet with client2, under the running coordinator ------------------------------
q juke "INSERT INTO artists (id, name) VALUES (1001, 'from jukebox')"
on_c2() { [[ $(q c2 "SELECT count(*) FROM artists WHERE id = 1001") == 1 ]]; }
ok wait_until 30 on_c2
q c2 "INSERT INTO artists (id, name) VALUES (2001, 'from client2'); UPDATE big SET payload = 'changed on client2' WHERE id = 7"
on_cava() { [[ $(q cava "SELECT count(*) FROM artists WHERE id = 2001") == 1 && $(q cava "SELECT payload FROM big WHERE id = 7") == 'changed on client2' ]]; }
ok wait_until 30 on_cava
on_juke() { [[ $(q juke "SELECT count(*) FROM artists WHERE id = 2001") == 1 ]]; }
ok wait_until 30 on_juke
all_same() { [[ $(sums c2) == "$(sums cava)" && $(sums juke) == "$(sums cava)" ]]; }
ok wait_until 30 all_same
echo "new on jukebox" >"$B/new-from-juke.txt"
rc sync folder music --wait
is "$(cat "$C/new-from-juke.txt" 2>/dev/null)" "new on jukebox" "a file added on jukebox reaches client2"
is "$(tree_sum "$C")" "$(tree_sum "$A")" "... and the three folders are equal"
run_repctl status
is "$RC" 0 "status"
like "$OUT" "cavaforgepad_to_client2 +running" "status: client2's syncs run under the coordinator"

# ---- offboard ---------------------------------------------------------------------------
rows_before=$(sums c2)
run_repctl offboard client2
is "$RC" 0 "offboard client2 (stderr: ${ERR:0:400})"
like "$OUT" "syncs removed: cavaforgepad_to_client2, client2_to_cavaforgepad" "offboard: the syncs"
has_str "$OUT" "folder memberships removed: music:$C" "offboard: the folder membership"
like "$OUT" "node 'client2' removed" "offboard: the node"
is "$(msql "SELECT (SELECT count(*) FROM repctl.node WHERE name = 'client2') + (SELECT count(*) FROM repctl.sync_node WHERE node = 'client2') + (SELECT count(*) FROM repctl.herd_table WHERE node = 'client2') + (SELECT count(*) FROM repctl.folder_node WHERE node = 'client2')")" 0 \
	"nothing of client2 is left in the metadata"
is "$(sums c2)" "$rows_before" "client2's rows stay"
is "$(q c2 "SELECT count(*) FROM pg_namespace WHERE nspname = 'repctl'")" 0 "no schema repctl on client2"
is "$(q c2 "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'repctl%'")" 0 "no repctl trigger on client2"
ok test -s "$C/notes.txt"
q cava "INSERT INTO artists (id, name) VALUES (3001, 'after offboard')"
juke_3001() { [[ $(q juke "SELECT count(*) FROM artists WHERE id = 3001") == 1 ]]; }
ok wait_until 30 juke_3001
is "$(q c2 "SELECT count(*) FROM artists WHERE id = 3001")" 0 "client2 no longer receives changes"
settled() { run_repctl status --json; [[ $RC == 0 ]] && ! grep -q '"health": "red"' <<<"$OUT"; }
ok wait_until 30 settled
rc sync folder music
done_testing
