#!/usr/bin/env bash
# tests/integration/t_coord_start.sh - issue 12 item 3: `repctl start` is
# reliable and its refusals say who holds what.  Pair a <-> b (syncs ab, ba).
#
# Proves:
#  - a stale pid file naming a dead pid does not stop `start`;
#  - a pid file naming a live process that is not a coordinator (a `sleep`
#    of this test, as after pid reuse): `status` says the coordinator is not
#    running, `stop` and `reload` do not signal that process (it lives on),
#    and `start` succeeds (the new coordinator's pid replaces it) while that
#    process is left untouched, also by the `stop` that follows;
#  - `start` while a coordinator runs exits 1 with "already running" and the
#    running coordinator's pid, and the coordinator keeps running; the same
#    while the coordinator is frozen (SIGSTOP: alive but not answering);
#  - after a SIGKILL of the coordinator, `start` right away succeeds (no
#    "already running"), 3 times in a row; when it returns, no child of the
#    killed coordinator is left, and the new coordinator replicates;
#  - the same when one child of the killed coordinator is frozen (SIGSTOP):
#    start succeeds (it stops the leftover) and does not take the killed
#    coordinator, a zombie until PID 1 reaps it, for a running one;
#  - `repctl stop` at the end leaves no process of this test's repctl.
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
mkdir -p "$REPCTL_STATE_DIR"
pidfile=$REPCTL_STATE_DIR/repctl.pid

has() { [[ $(repl_val "$1" "SELECT count(*) FROM $2 WHERE $3") -ge 1 ]]; }
all_gone() {
	local p
	for p in "$@"; do
		if pid_running "$p"; then
			return 1
		fi
	done
}
alive_list() {
	local p out=''
	for p in "$@"; do
		if pid_running "$p"; then
			out+="$p "
		fi
	done
	printf '%s' "$out"
}
nothing_left() { [[ -z $(repl_daemon_pids) ]]; }
# after a failed check that leaves a coordinator of ours running: stop it
stop_quietly() { "$REPCTL" stop >/dev/null 2>&1 || true; }
cleanup_push stop_quietly
# a live process that is not a coordinator, for the pid file
sleepers=()
sleeper() {
	sleep 300 &
	SLEEPER=$!
	sleepers+=("$SLEEPER")
	cleanup_push "kill $SLEEPER 2>/dev/null || true"
}
id=100
flows() {
	id=$((id + 1))
	repl_sql a "INSERT INTO songs (id, title) VALUES ($id, 'row $id')"
	if wait_until 15 has b songs "id = $id"; then
		pass "$1: a -> b replicates"
	else
		fail "$1: a -> b replicates"
	fi
}

# ---- a stale pid file: dead pid ----------------------------------------------------------------
sleep 0 &
dead=$!
wait "$dead" || true
wait_until 5 eval "! kill -0 $dead 2>/dev/null" || true
echo "$dead" >"$pidfile"
note "pid file names $dead, a process that has exited"
repl_start
cpid=$(<"$pidfile")
isnt_dead() { [[ $cpid != "$dead" ]]; }
ok isnt_dead
ok pid_running "$cpid"
flows "started over a dead pid"
run_repctl stop
is "$RC" 0 "stop"
ok wait_until 10 nothing_left

# ---- a pid file naming a live unrelated process -------------------------------------------
sleeper
echo "$SLEEPER" >"$pidfile"
note "pid file names $SLEEPER, a sleep of this test"
run_repctl status
like "$OUT" "^coordinator: not running" "status: not running (the pid file names a sleep)"
run_repctl stop
ok pid_running "$SLEEPER"
like "$OUT$ERR" "not running" "stop: says not running"
fails test "$RC" -gt 1
if ! pid_running "$SLEEPER"; then
	sleeper
	echo "$SLEEPER" >"$pidfile"
fi
run_repctl reload
sleep 0.5
ok pid_running "$SLEEPER"
if ! pid_running "$SLEEPER"; then
	sleeper
	echo "$SLEEPER" >"$pidfile"
fi
run_repctl start
start_rc=$RC
is "$RC" 0 "start with the pid file naming a live sleep succeeds"
unlike "$ERR" "already running" "... without 'already running'"
[[ $RC == 0 ]] || diag "start: $OUT $ERR"
ok pid_running "$SLEEPER"
cpid=$(<"$pidfile")
isnt_sleeper() { [[ $cpid != "$SLEEPER" ]]; }
ok isnt_sleeper
if [[ $start_rc == 0 ]]; then
	ok pid_running "$cpid"
	flows "started over a live unrelated pid"
	run_repctl stop
	is "$RC" 0 "stop"
	ok wait_until 10 eval "! pid_running $cpid"
fi
ok pid_running "$SLEEPER"
ok wait_until 10 nothing_left
# (a refused start left the pid file naming the sleep: remove it, as an admin would)
[[ $start_rc == 0 ]] || rm -f -- "$pidfile"

# ---- start while running ---------------------------------------------------------------------------
repl_start
cpid=$(<"$pidfile")
ok wait_until 10 eval "[[ \$(pgrep -P $cpid | wc -l) -ge 2 ]]"
run_repctl start
is "$RC" 1 "start while running: exit 1"
like "$ERR" "already running" "... 'already running'"
like "$ERR" "pid $cpid\b" "... naming the running coordinator's pid $cpid"
ok pid_running "$cpid"
is "$(<"$pidfile")" "$cpid" "the pid file still names $cpid"

kill -STOP "$cpid"
cleanup_push "kill -CONT $cpid 2>/dev/null || true"
run_repctl start
is "$RC" 1 "start while the coordinator is frozen: exit 1"
like "$ERR" "already running|another coordinator" "... refused"
like "$ERR" "pid $cpid\b" "... naming the frozen coordinator's pid $cpid"
kill -CONT "$cpid"
ok pid_running "$cpid"
flows "the coordinator continues"

# ---- start right after a SIGKILL of the coordinator ---------------------------------------
for round in 1 2 3; do
	mapfile -t kids < <(pgrep -P "$cpid" || true)
	note "round $round: SIGKILL coordinator $cpid (children: ${kids[*]})"
	kill -9 "$cpid"
	t0=$EPOCHREALTIME
	run_repctl start
	t1=$EPOCHREALTIME
	is "$RC" 0 "round $round: start right after the SIGKILL succeeds"
	unlike "$ERR" "already running" "round $round: ... without 'already running'"
	note "start took $(((${t1/[.,]/} - ${t0/[.,]/}) / 1000)) ms; said: ${OUT//$'\n'/ | } ${ERR//$'\n'/ | }"
	left=$(alive_list "${kids[@]}")
	is "$left" "" "round $round: no child of the killed coordinator left when start returns"
	if [[ $RC != 0 ]]; then
		for p in $left; do kill -9 "$p" 2>/dev/null || true; done
		try_start() { run_repctl start >/dev/null && [[ $RC == 0 ]]; }
		wait_until 20 try_start || true
	elif [[ -n $left ]]; then
		# old coordinators' orphans: stop them (by pid) so the next round is clean
		for p in $left; do kill -9 "$p" 2>/dev/null || true; done
	fi
	cpid=$(<"$pidfile")
	ok pid_running "$cpid"
	ok wait_until 10 eval "[[ \$(pgrep -P $cpid | wc -l) -ge 2 ]]"
	flows "round $round: after the restart"
done

# ---- a leftover child that is frozen when the coordinator is killed ----------------------
# it cannot exit by itself (it holds whatever the coordinator's children hold, e.g. the
# pid file's lock): start must still succeed, stopping it, and not take the killed
# coordinator (a zombie until PID 1 reaps it) for a running one
mapfile -t kids < <(pgrep -P "$cpid" || true)
frozen=${kids[0]}
kill -STOP "$frozen"
cleanup_push "kill -CONT $frozen 2>/dev/null || true"
note "froze child $frozen, SIGKILL coordinator $cpid (children: ${kids[*]})"
kill -9 "$cpid"
t0=$EPOCHREALTIME
run_repctl start
t1=$EPOCHREALTIME
is "$RC" 0 "start after the SIGKILL, with a frozen leftover child, succeeds"
unlike "$ERR" "already running" "... without 'already running'"
note "start took $(((${t1/[.,]/} - ${t0/[.,]/}) / 1000)) ms; said: ${OUT//$'\n'/ | } ${ERR//$'\n'/ | }"
if [[ $RC == 0 ]]; then
	is "$(alive_list "${kids[@]}")" "" "no child of the killed coordinator left when start returns (the frozen one included)"
fi
kill -CONT "$frozen" 2>/dev/null || true
if [[ $RC != 0 ]]; then
	try_start() { run_repctl start >/dev/null && [[ $RC == 0 ]]; }
	wait_until 30 try_start || true
fi
cpid=$(<"$pidfile")
ok pid_running "$cpid"
ok wait_until 10 eval "[[ \$(pgrep -P $cpid | wc -l) -ge 2 ]]"
flows "after the restart over a frozen leftover"

# ---- stop -------------------------------------------------------------------------------------------
run_repctl stop
is "$RC" 0 "repctl stop"
ok wait_until 10 nothing_left
for s in "${sleepers[@]}"; do
	pid_running "$s" && note "sleep $s still alive (as it should be)"
done
repl_same "a = b at the end" a b
repl_no_daemon_san

done_testing
