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

# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/deadconn.sh"

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
