# shellcheck shell=bash
# shellcheck disable=SC2034 # RUN_RC, RUN_ERR, RUN_SECS are for the tests
# tests/integration/lib/deadconn.sh - helpers of the dead-connection tests
# (t_deadconn*.sh), for a pair a -> b set up with repl_setup and a sync ab.
# Source after repl.sh.
#
#   freeze CLUSTER / thaw CLUSTER / thaw_all
#                        SIGSTOP / SIGCONT a cluster's postmaster and children
#                        (thaw_all is pushed on the cleanup stack)
#   lock_table NODE TABLE / unlock NODE
#                        a session holds TABLE in ACCESS EXCLUSIVE mode
#   waiting NODE         a repctl backend on NODE waits for a lock
#   in_copy NODE RE / kill_copy NODE RE
#                        a repctl backend on NODE runs COPY ... RE / terminate it
#   run_bg SYNC          repctl run SYNC in the background (RUN_PID, RUN_T0)
#   run_ends_within SECS MSG
#                        assert the background run ends within SECS; sets
#                        RUN_RC, RUN_ERR, RUN_SECS
#   catch_up MSG         repctl run ab is good and a, b are identical
#   add_rows N           N new songs on a

if [[ -n ${_REPCTL_DEADCONN_SH:-} ]]; then
	return 0
fi
_REPCTL_DEADCONN_SH=1

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
