#!/usr/bin/env bash
# tests/integration/t_coord_control.sh - issue 12 item 5: control commands
# find and reach the coordinator through the metadata database, from a
# process that shares nothing else with it: a second configuration file
# with its own state_dir, pid file and log, but the same metadata database
# (what `docker compose run --rm repctl ...` in another container sees).
# Pair a <-> b (syncs ab, ba); the coordinator runs from the first state dir.
#
# Proves, from the second configuration:
#  - `status` says the coordinator is running and names its pid, and
#    `status --health` is green;
#  - the coordinator holds its lock on the metadata database (pg_locks,
#    classid 1919968116) on a session whose application_name names its pid;
#  - `reload` makes that coordinator reload: its log (in the first state
#    dir) says so and its children are started again;
#  - `kick ab --wait` reaches it and prints a good run;
#  - `start` is refused (exit 1) naming the running coordinator's pid, and
#    starts no second coordinator;
#  - `stop` stops it: the coordinator and its children exit, its lock is
#    released, and `status` (from both configurations) says not running.
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
for e in ab ba; do
	run_repctl add sync "$e" relgroup=h dbs="${e:0:1}:source,${e:1:1}:target" conflict_strategy=bucardo_latest
	is "$RC" 0 "add sync $e"
done

# ---- the second "container" ---------------------------------------------------------------------
dir2=$TEST_TMP/state2
mkdir -p "$dir2"
conf2=$TEST_TMP/repctl2.conf
cat >"$conf2" <<EOF
meta = "$REPCTL_META";
state_dir = "$dir2";
pid_file = "$dir2/repctl.pid";
log_file = "$dir2/repctl.log";
EOF
# run_other ARGS... : repctl with the second configuration (no REPCTL_STATE_DIR)
run_other() {
	local sd=$REPCTL_STATE_DIR
	unset REPCTL_STATE_DIR
	REPCTL_CONFIG=$conf2 run_repctl "$@"
	REPCTL_STATE_DIR=$sd
	export REPCTL_STATE_DIR
}
other_quietly() { env -u REPCTL_STATE_DIR REPCTL_CONFIG="$conf2" "$REPCTL" "$@"; }
# whatever happens, nothing started from the second configuration outlives the test
cleanup_push "env -u REPCTL_STATE_DIR REPCTL_CONFIG=$conf2 $REPCTL stop >/dev/null 2>&1 || true"
run_other config
like "$OUT" "state_dir.*$dir2" "the second configuration has its own state_dir"
like "$OUT" "pid_file.*$dir2/repctl.pid" "... and its own pid file"

has() { [[ $(repl_val "$1" "SELECT count(*) FROM $2 WHERE $3") -ge 1 ]]; }
kids() { pgrep -P "$cpid" | sort | tr '\n' ' '; }
nkids() { pgrep -P "$cpid" | wc -l; }
meta() { pg_psql meta postgres "$@"; }
coord_locks() {
	meta -c "SELECT coalesce(string_agg(coalesce(a.application_name, '?'), '; '), '')
	           FROM pg_catalog.pg_locks l LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
	          WHERE l.locktype = 'advisory' AND l.classid = 1919968116 AND l.granted"
}
other_green() { other_quietly status --health >/dev/null 2>&1; }

repl_start
cpid=$(<"$REPCTL_STATE_DIR/repctl.pid")
log1=$REPCTL_STATE_DIR/repctl.log
some_kids() { (($(nkids) >= 2)); }
ok wait_until 15 some_kids
note "coordinator $cpid (first state dir), children: $(kids)"
repl_sql a "INSERT INTO songs (id, title) VALUES (1, 'first')"
ok wait_until 10 has b songs "id = 1"

# ---- status from the second configuration ---------------------------------------------------
run_other status
is "$RC" 0 "other: status"
like "$OUT" "^coordinator: running" "other: status says the coordinator is running"
like "$OUT" "pid $cpid\b" "other: ... and names its pid $cpid"
if wait_until 20 other_green; then
	pass "other: status --health green"
else
	run_other status --health
	fail "other: status --health green" "$OUT $ERR"
fi
like "$(coord_locks)" "pid $cpid\b" "the coordinator lock is held by a session naming pid $cpid"

# ---- reload ---------------------------------------------------------------------------------------------
reloads() { grep -ci 'reload' "$log1" || true; }
before=$(reloads)
kids_before=$(kids)
run_other reload
is "$RC" 0 "other: reload"
[[ $RC == 0 ]] || diag "reload: $OUT $ERR"
more_reloads() { (($(reloads) > before)); }
if wait_until 10 more_reloads; then
	pass "the coordinator's log says it reloaded: $(grep -i 'reload' "$log1" | tail -n 1)"
else
	fail "the coordinator's log says it reloaded" "$(tail -n 5 "$log1")"
fi
new_kids() { [[ $(kids) != "$kids_before" ]] && some_kids; }
if wait_until 10 new_kids; then
	pass "reload started the coordinator's children again ($kids_before -> $(kids))"
else
	fail "reload started the coordinator's children again" "before: $kids_before, now: $(kids)"
fi
ok pid_running "$cpid"
repl_sql a "INSERT INTO songs (id, title) VALUES (2, 'after the reload')"
ok wait_until 10 has b songs "id = 2"

# ---- kick ----------------------------------------------------------------------------------------------
repl_sql a "INSERT INTO songs (id, title) VALUES (3, 'kicked')"
run_other kick ab --wait --timeout=30
is "$RC" 0 "other: kick ab --wait"
like "$OUT" "^sync 'ab': good" "other: kick prints a good run"
ok wait_until 10 has b songs "id = 3"

# ---- start is refused ----------------------------------------------------------------------------
run_other start
is "$RC" 1 "other: start is refused (exit 1)"
like "$ERR" "already running|another coordinator" "other: ... because a coordinator runs"
like "$ERR" "pid $cpid\b" "other: ... naming it (pid $cpid)"
ok pid_running "$cpid"
only_ours() {
	local p
	for p in $(repl_daemon_pids); do
		[[ $p == "$cpid" ]] && continue
		[[ $(awk '{print $4}' "/proc/$p/stat" 2>/dev/null) == "$cpid" ]] && continue
		echo "$p ($(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null))"
	done
}
is "$(only_ours)" "" "no second coordinator runs (only $cpid and its children)"
if [[ -s $dir2/repctl.pid ]] && pid_running "$(head -n 1 "$dir2/repctl.pid")"; then
	fail "no coordinator runs from the second state dir" "its pid file: $(<"$dir2/repctl.pid")"
	# a second coordinator (the bug): stop it through its own pid file, then go on
	other_quietly stop >/dev/null 2>&1 || true
else
	pass "no coordinator runs from the second state dir"
fi
ok pid_running "$cpid"

# ---- stop -------------------------------------------------------------------------------------------------
mapfile -t kids_now < <(pgrep -P "$cpid" || true)
run_other stop
is "$RC" 0 "other: stop"
note "stop said: $OUT $ERR"
if wait_until 15 eval "! pid_running $cpid"; then
	pass "other: stop made the coordinator $cpid exit"
else
	fail "other: stop made the coordinator $cpid exit"
fi
gone() {
	local p
	for p in "${kids_now[@]}"; do
		if pid_running "$p"; then
			return 1
		fi
	done
}
ok wait_until 10 gone
no_lock() { [[ -z $(coord_locks) ]]; }
ok wait_until 10 no_lock
run_other status
like "$OUT" "^coordinator: not running" "other: status says not running"
run_repctl status
like "$OUT" "^coordinator: not running" "first: status says not running"
nothing_left() { [[ -z $(repl_daemon_pids) ]]; }
ok wait_until 10 nothing_left
repl_no_daemon_san

done_testing
