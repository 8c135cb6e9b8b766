#!/usr/bin/env bash
# tests/integration/t_deadconn.sh - a dead or hung connection never hangs a
# run, a worker or `repctl stop` (issue 11, item 7).
#
# Two nodes a -> b (sync ab), statement_timeout = 6 and connect_timeout = 2
# from a configuration file.  A run is caught at a precise point by a lock
# another session holds (ACCESS EXCLUSIVE on songs: on a, the source's COPY
# waits for it after the target's COPY has started; on b, the target's work
# waits for it); then a connection is killed (pg_terminate_backend of
# repctl's backend) or its server hung (SIGSTOP of the cluster's postmaster
# and children, all started by this test; SIGCONT after).  Proves:
#  - a live server ends a statement that waits longer than statement_timeout
#    (set by repctl on its connections): the run fails with the server's
#    "statement timeout" within seconds;
#  - target killed mid-COPY: the run ends within seconds with an error
#    naming node 'b' (it used to spin at 100% CPU forever, the source left
#    in COPY OUT); source killed mid-COPY: an error naming node 'a';
#  - target hung mid-apply, source hung mid-COPY: the run ends within
#    statement_timeout + a few seconds with "node 'b'/'a' did not answer";
#  - after each, the next run catches up: a and b identical;
#  - repctl's connections get TCP keepalives probing after 10 s of silence
#    (tcp.keepalives_idle), not the system's 2 hours;
#  - under the daemon: target hung mid-apply -> the worker's run fails
#    naming b, the worker retries (several failed runs), and once b answers
#    again it catches up by itself (same coordinator);
#  - `repctl stop` while the worker is blocked on the hung b returns within
#    a few seconds, without the coordinator having to SIGKILL the worker.
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
repl_config 'sync_interval = 2;
connect_timeout = 2;
statement_timeout = 6;
retry = { min = 1; max = 2; };
circuit = { failures = 100; reset = 2; };'
run_repctl add sync ab relgroup=h dbs=a:source,b:target conflict_strategy=bucardo_latest
is "$RC" 0 "add sync ab"

# ---- helpers ------------------------------------------------------------------------------

# freeze CLUSTER / thaw CLUSTER: SIGSTOP / SIGCONT its postmaster, then its
# children (the postmaster first, so that it forks nothing in between).
declare -A FROZEN=()
freeze() {
	local pm p kids
	pm=$(pg_pid "$1")
	[[ -n $pm ]] || return 1
	kill -STOP "$pm"
	kids=$(pgrep -P "$pm" || true)
	FROZEN[$1]="$pm $kids"
	for p in $kids; do kill -STOP "$p" 2>/dev/null || true; done
	note "cluster $1 frozen (pids ${FROZEN[$1]//$'\n'/ })"
}
thaw() {
	local p
	# children first, the postmaster last
	for p in $(tr ' ' '\n' <<<"${FROZEN[$1]:-}" | tac); do kill -CONT "$p" 2>/dev/null || true; done
	FROZEN[$1]=''
}
thaw_all() {
	local c
	for c in "${!FROZEN[@]}"; do thaw "$c"; done
}
# runs before the clusters' own cleanup (a stopped postmaster cannot be stopped)
cleanup_push thaw_all

# lock_table NODE TABLE: a session holds TABLE in ACCESS EXCLUSIVE mode until unlock NODE
LOCKER_PID=''
lock_table() {
	repl_psql "$1" -c "SET application_name = 'deadconn-locker'; BEGIN;
		LOCK TABLE $2 IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(600); COMMIT;" >/dev/null 2>&1 &
	LOCKER_PID=$!
	ok wait_until 10 locked "$1"
}
locked() {
	[[ $(repl_val "$1" "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity s USING (pid)
		WHERE s.application_name = 'deadconn-locker' AND l.mode = 'AccessExclusiveLock'
		AND l.granted") -ge 1 ]]
}
unlock() {
	repl_val "$1" "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = 'deadconn-locker'" >/dev/null
	[[ -z $LOCKER_PID ]] || wait "$LOCKER_PID" 2>/dev/null || true
	LOCKER_PID=''
}
# a repctl backend on NODE waiting for a lock / running COPY ... (FROM STDIN|TO STDOUT)
waiting() {
	[[ $(repl_val "$1" "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'repctl'
		AND wait_event_type = 'Lock'") -ge 1 ]]
}
in_copy() {
	[[ $(repl_val "$1" "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'repctl'
		AND state = 'active' AND query ~ '^COPY .*$2'") -ge 1 ]]
}
kill_copy() {
	repl_val "$1" "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = 'repctl' AND query ~ '^COPY .*$2'"
}

# run_bg SYNC: repctl run SYNC in the background (RUN_PID, RUN_T0; output in files)
run_bg() {
	"$REPCTL" run "$1" >"$TEST_TMP/run.out" 2>"$TEST_TMP/run.err" &
	RUN_PID=$!
	RUN_T0=$EPOCHREALTIME
}
run_gone() { ! pid_running "$RUN_PID"; }
# run_ends_within SECS MSG: the background run ends by itself within SECS from
# now; sets RUN_RC, RUN_ERR, RUN_SECS (seconds since run_bg).  A run still going
# is killed (it is ours) and fails.
run_ends_within() {
	local secs=$1 msg=$2 now t0=${EPOCHREALTIME/[.,]/}
	RUN_RC=0
	if wait_until "$secs" run_gone; then
		wait "$RUN_PID" || RUN_RC=$?
		now=${EPOCHREALTIME/[.,]/}
		RUN_SECS=$(((10#$now - 10#${RUN_T0/[.,]/}) / 1000000))
		pass "$msg: the run ended by itself $(((10#$now - 10#$t0) / 1000)) ms later (< ${secs}s)"
	else
		note "cpu of the run after ${secs}s: $(ps -o pcpu=,time= -p "$RUN_PID" 2>/dev/null || true)"
		kill -9 "$RUN_PID" 2>/dev/null || true
		wait "$RUN_PID" 2>/dev/null || true
		RUN_RC=137
		RUN_SECS=-1
		fail "$msg: the run ended by itself within ${secs}s" "it was still running: killed"
	fi
	RUN_ERR=$(<"$TEST_TMP/run.err")
	note "run: exit $RUN_RC, stderr: ${RUN_ERR//$'\n'/ | }"
}
catch_up() {
	repl_run ab
	is "$RUN_RC" 0 "$1: the next run is good"
	repl_same "$1: caught up" a b
}
next_id=1000
add_rows() {
	repl_sql a "INSERT INTO songs (id, title) SELECT g, 'row ' || g FROM generate_series($next_id, $((next_id + $1 - 1))) g"
	next_id=$((next_id + $1))
}

repl_run ab
is "$RUN_RC" 0 "first run with both nodes up"

# ---- a live server ends a statement at statement_timeout ---------------------------------
add_rows 10
lock_table b songs
run_bg ab
run_ends_within 20 "lock wait on b past statement_timeout"
ok test "$RUN_RC" -ne 0
like "$RUN_ERR" 'statement timeout' "the server's statement timeout ended it"
ok test "$RUN_SECS" -ge 5
unlock b
catch_up "after the statement timeout"

# ---- target killed mid-COPY ---------------------------------------------------------------
add_rows 20000
lock_table a songs
run_bg ab
ok wait_until 15 in_copy b 'FROM STDIN'
ok wait_until 5 waiting a
is "$(kill_copy b 'FROM STDIN')" 1 "the target's COPY backend terminated"
unlock a
run_ends_within 15 "target killed mid-COPY"
ok test "$RUN_RC" -ne 0
like "$RUN_ERR" "node 'b'" "the error names the dead target b"
catch_up "after the target was killed"

# ---- source killed mid-COPY ---------------------------------------------------------------
add_rows 20000
lock_table a songs
run_bg ab
ok wait_until 15 in_copy b 'FROM STDIN'
ok wait_until 5 in_copy a 'TO STDOUT'
is "$(kill_copy a 'TO STDOUT')" 1 "the source's COPY backend terminated"
unlock a
run_ends_within 15 "source killed mid-COPY"
ok test "$RUN_RC" -ne 0
like "$RUN_ERR" "node 'a'" "the error names the dead source a"
is "$(pg_sql meta postgres "SELECT failures > 0 FROM repctl.node_state WHERE node = 'a'")" t \
	"the circuit breaker counts the dead source"
catch_up "after the source was killed"

# ---- target hung mid-apply ----------------------------------------------------------------
add_rows 100
lock_table b songs
run_bg ab
ok wait_until 15 waiting b
freeze b
run_ends_within 25 "target hung mid-apply"
ok test "$RUN_RC" -ne 0
like "$RUN_ERR" "node 'b'.*(did not answer|timeout)" "the error says b did not answer"
thaw b
unlock b
catch_up "after b was hung"

# ---- source hung mid-COPY -----------------------------------------------------------------
add_rows 20000
lock_table a songs
run_bg ab
ok wait_until 15 in_copy b 'FROM STDIN'
ok wait_until 5 waiting a
freeze a
run_ends_within 25 "source hung mid-COPY"
ok test "$RUN_RC" -ne 0
like "$RUN_ERR" "node 'a'.*(did not answer|timeout)" "the error says a did not answer"
thaw a
unlock a
catch_up "after a was hung"

# ---- under the daemon ---------------------------------------------------------------------
meta_val() { pg_sql meta postgres "$1"; }
repl_start
cpid=$(<"$REPCTL_STATE_DIR/repctl.pid")
synced() { [[ $(repl_sums a) == "$(repl_sums b)" ]]; }
add_rows 10
ok wait_until 20 synced

# keepalives: the worker's idle connections to b probe after 10 s of silence
ka_timer() { ss -tnoH state established "( dport = :$(pg_port b) )" 2>/dev/null | grep -o 'timer:(keepalive,[^,]*' | head -n 1; }
if command -v ss >/dev/null 2>&1; then
	ok wait_until 10 ka_timer
	t=$(ka_timer)
	note "a connection to b: $t"
	like "$t" 'keepalive,([0-9](\.[0-9]+)?|10(\.0+)?)(ms|sec)$' "TCP keepalive probes start within 10 s of silence"
fi

lastrun=$(meta_val "SELECT coalesce(max(id), 0) FROM repctl.run")
lock_table b songs
add_rows 100
ok wait_until 20 waiting b
freeze b
failed_runs() {
	meta_val "SELECT count(*) FROM repctl.run WHERE sync = 'ab' AND id > $lastrun
		AND ok = false AND error LIKE '%''b''%'"
}
failed_once() { [[ $(failed_runs) -ge 1 ]]; }
failed_thrice() { [[ $(failed_runs) -ge 3 ]]; }
ok wait_until 25 failed_once
note "failed run: $(meta_val "SELECT error FROM repctl.run WHERE sync = 'ab' AND id > $lastrun AND ok = false ORDER BY id LIMIT 1")"
ok wait_until 30 failed_thrice
note "failed runs while b is hung: $(failed_runs)"
thaw b
unlock b
add_rows 10
ok wait_until 40 synced
repl_same "the daemon caught b up by itself" a b
is "$(<"$REPCTL_STATE_DIR/repctl.pid")" "$cpid" "the same coordinator"

# ---- stop while the worker is blocked on a hung node ---------------------------------------
lock_table b songs
add_rows 100
ok wait_until 20 waiting b
freeze b
sleep 1
t0=${EPOCHREALTIME/[.,]/}
run_repctl stop
stop_ms=$(((${EPOCHREALTIME/[.,]/} - t0) / 1000))
is "$RC" 0 "repctl stop with b hung"
note "repctl stop took ${stop_ms} ms"
ok test "$stop_ms" -lt 5000
unlike "$(cat "$REPCTL_STATE_DIR/repctl.log" 2>/dev/null)" 'did not stop in 30s, killing it' \
	"no worker had to be killed"
ok test '!' -e "$REPCTL_STATE_DIR/repctl.pid"
thaw b
unlock b
catch_up "after the stop"
repl_no_daemon_san

done_testing
