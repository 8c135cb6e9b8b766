#!/usr/bin/env bash
# tests/integration/t_health.sh - `repctl status --health`, the check for
# monitors and Docker's HEALTHCHECK, against real clusters: a metadata
# cluster and two nodes a <-> b (syncs ab, ba) with a running coordinator.
#
# Proves, each time with exactly one line on stdout starting with the word
# that matches the exit status (0 green, 1 yellow, 2 red, 3 unknown):
#  - 3 when the metadata database is unreachable, when the schema is not
#    installed, and when the configuration file cannot be read; plain
#    `status` still fails with exit 1 and its message on stderr then;
#  - 2 "coordinator not running" once installed but not started;
#  - 0 with the coordinator up but nothing to replicate yet (no sync, no
#    folder): a fresh primary is healthy and idle, and says so;
#  - 0 "green: 2 syncs healthy" once the coordinator has run both syncs;
#  - 1 "yellow: sync ab: paused" after `pause ab`, 0 again after `resume`;
#  - 2 "red: sync ab: ..." when node b is down and a run fails, naming b's
#    error; 0 again by itself once b is back;
#  - an inactive sync (gray) does not count: still green, "1 inactive";
#  - folders count too: a folder whose last run failed makes it red with
#    the folder's error, a good run green ("1 sync, 1 folder healthy");
#  - `status SYNC --health` looks at that sync only; an unknown SYNC is 3;
#  - 3 when the metadata database stops under a running coordinator;
#  - `repctl help status` documents --health; the full status still works.
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

WORDS=(green yellow red unknown)

# health [ARGS...] : run status --health; sets RC, OUT, ERR
health() {
	run_repctl status "$@" --health
	note "health: $OUT"
}

# health_is RC RE MSG : the exit status, one line, its word, and RE
health_is() {
	local want=$1 re=$2 msg=$3
	is "$RC" "$want" "$msg: exit $want"
	is "$(printf '%s\n' "$OUT" | wc -l)" 1 "$msg: exactly one line on stdout"
	like "$OUT" "^${WORDS[want]}: " "$msg: the line starts with '${WORDS[want]}: '"
	like "$OUT" "$re" "$msg: reason"
}

# health_rc RC [ARGS...] : for wait_until
health_rc() {
	local want=$1 rc=0
	shift
	"$REPCTL" status "$@" --health >/dev/null 2>&1 || rc=$?
	[[ $rc == "$want" ]]
}

# ---- unknown: no metadata database, no schema, no configuration ------------------------------
fx_closed_port
export REPCTL_STATE_DIR=$TEST_TMP/state
export REPCTL_META="host=127.0.0.1 port=$FX_CLOSED_PORT user=postgres dbname=postgres connect_timeout=3"
unset REPCTL_CONFIG REPCTL_NODE
health
health_is 3 'cannot connect to the metadata database' "metadata database unreachable"
is "$ERR" "" "--health prints nothing on stderr"
run_repctl status
is "$RC" 1 "plain status with the metadata database unreachable: exit 1"
like "$ERR" 'cannot connect to the metadata database' "plain status says why on stderr"

pg_start meta
fx_env meta
health
health_is 3 'schema is not installed.*repctl install' "schema not installed"
run_repctl status
is "$RC" 1 "plain status without the schema: exit 1"
like "$ERR" 'not installed' "plain status says the schema is not installed"

REPCTL_CONFIG=$TEST_TMP/no-such.conf health
health_is 3 'no-such.conf' "configuration file missing"
printf 'no_such_key = 1;\n' >"$TEST_TMP/bad.conf"
REPCTL_CONFIG=$TEST_TMP/bad.conf health
health_is 3 'no_such_key' "configuration file with an unknown key"

# ---- installed: coordinator not running, then nothing to replicate ----------------------------
fx_install
health
health_is 2 'coordinator not running' "installed, coordinator not started"
like "$OUT" "$REPCTL_STATE_DIR/repctl.pid" "the reason names the pid file"

# fast retries, and a circuit breaker that cannot stay open for long
repl_config 'sync_interval = 2;
retry = { min = 1; max = 2; };
circuit = { failures = 100; reset = 2; };'
repl_start
health
health_is 0 '^green: idle: coordinator running .*no active sync or folder yet' "coordinator up, no sync or folder: green, idle"
run_repctl stop
is "$RC" 0 "stop the coordinator (to add the syncs)"

# ---- two nodes, a pair of syncs ---------------------------------------------------------------
repl_add_node a
repl_add_node b
for e in ab ba; do
	run_repctl add sync "$e" herd=h dbs="${e:0:1}:source,${e:1:1}:target"
	is "$RC" 0 "add sync $e"
done
health
health_is 2 'coordinator not running' "syncs added, coordinator stopped: red"

repl_start
ok wait_until 30 health_rc 0
health
health_is 0 '^green: 2 syncs healthy \(coordinator pid [0-9]+ on .*\)$' "both syncs ran: green"
health ab
health_is 0 '^green: 1 sync healthy' "status ab --health: that sync only"
health nosuch
health_is 3 "no sync 'nosuch'" "status nosuch --health"

# ---- paused: yellow ---------------------------------------------------------------------------
run_repctl pause ab
is "$RC" 0 "pause ab"
health
health_is 1 '^yellow: sync ab: paused$' "a paused sync is yellow"
run_repctl resume ab
is "$RC" 0 "resume ab"
health
health_is 0 '^green: 2 syncs healthy' "resumed: green again"

# ---- a node down: red with the failed run's error ---------------------------------------------
pg_stop b
repl_sql a "INSERT INTO songs (id, title) VALUES (1, 'while b is down')"
run_repctl kick ab
ok wait_until 30 health_rc 2
health
health_is 2 '^red: sync (ab|ba): ' "node b down: red"
like "$OUT" 'last run failed|cannot count pending|circuit breaker open' "the reason says what failed"
like "$OUT" "127\.0\.0\.1|$(pg_port b)|connect" "the reason carries the connection error"
like "$OUT" '\(and 1 more red\)$' "the other sync, red too, is counted"

pg_start b
ok wait_until 60 health_rc 0
health
health_is 0 '^green: 2 syncs healthy' "b back: green again by itself"
is "$(repl_val b "SELECT title FROM songs WHERE id = 1")" "while b is down" \
	"the change made while b was down arrived"

# ---- gray does not count ----------------------------------------------------------------------
log=$REPCTL_STATE_DIR/repctl.log
started() { grep -c "coordinator running:" "$log" 2>/dev/null || true; }
before=$(started)
run_repctl update sync ba status=inactive
is "$RC" 0 "make ba inactive"
# update sync tells the coordinator to reload: let that reload end before the
# folder row below is written behind its back
reloaded() { [[ $(started) -gt $before ]]; }
ok wait_until 20 reloaded
health
health_is 0 '^green: 1 sync healthy, 1 inactive' "an inactive sync is left out"

# ---- folders: the same words ------------------------------------------------------------------
# A folder row and its runs written directly: the coordinator, not reloaded,
# has no worker for it, so the rows stay as written.
meta_sql() { pg_sql meta postgres "$1"; }
meta_sql "INSERT INTO repctl.folder (name) VALUES ('music')"
health
health_is 1 '^yellow: folder music: no run yet$' "a folder without a run is yellow"
meta_sql "INSERT INTO repctl.folder_run (folder, ended_at, ok, error)
          VALUES ('music', now(), false, 'folder marker missing on jukebox: /data/music')"
health
health_is 2 '^red: folder music: last run failed: folder marker missing on jukebox' \
	"a folder whose last run failed is red"
meta_sql "INSERT INTO repctl.folder_run (folder, ended_at, ok, files) VALUES ('music', now(), true, 3)"
health
health_is 0 '^green: 1 sync, 1 folder healthy, 1 inactive' "a folder with a good last run"
health ab
health_is 0 '^green: 1 sync healthy' "status SYNC --health leaves folders out"

# ---- the full status and help are unchanged ---------------------------------------------------
run_repctl status
is "$RC" 0 "plain status: exit 0"
like "$OUT" '^coordinator: running' "plain status: coordinator line"
like "$OUT" 'ab .*green' "plain status: ab green"
run_repctl status --json
is "$RC" 0 "status --json: exit 0"
ok json_ok "$OUT"
run_repctl help status
like "$OUT" '--health' "help status documents --health"
like "$OUT" '3 unknown' "help status gives the exit codes"

# ---- the metadata database goes away under the coordinator -------------------------------------
pg_stop meta
health
health_is 3 'cannot connect to the metadata database' "metadata stopped: unknown"
run_repctl stop
is "$RC" 0 "repctl stop works without the metadata database"
pg_start meta
health
health_is 2 'coordinator not running' "after stop: red"

repl_no_daemon_san
done_testing
