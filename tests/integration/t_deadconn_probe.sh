#!/usr/bin/env bash
# tests/integration/t_deadconn_probe.sh - a stopped or hung server ends a
# run within seconds even with the default statement_timeout (30 min), and
# a server that is only busy is never given up.
#
# A stopped server (SIGSTOP of the cluster, as a frozen VM or a stuck disk
# leaves it) keeps its TCP connections open and cannot fire its own
# statement_timeout: from its connection it looks exactly like a long
# statement.  After probe_after (3 s here) without an answer, repctl opens a
# second connection to the same server: no answer within 10 s there either,
# and the first is given up.  Two nodes a -> b (sync ab), statement_timeout
# left at its default (1800 s).  Proves:
#  - target stopped mid-apply: the run ends within probe_after + 10 s + a
#    margin (not 30 min), the error names b and says it did not answer;
#  - source stopped mid-COPY: the same, naming a;
#  - a busy server is not given up: the apply waits 12 s for a lock another
#    session holds on b (4 probes, each answered), then the run is good;
#  - after each, the next run catches up: a and b identical;
#  - probe_after = 0 turns the probe off (the stopped target is then only
#    given up at statement_timeout + 5 s: the run is still waiting after
#    20 s).
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
CONF='connect_timeout = 2;
retry = { min = 1; max = 2; };
circuit = { failures = 100; reset = 2; };'
repl_config "$CONF probe_after = 3;"
run_repctl add sync ab relgroup=h dbs=a:source,b:target conflict_strategy=bucardo_latest
is "$RC" 0 "add sync ab"
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/deadconn.sh"

repl_run ab
is "$RUN_RC" 0 "first run with both nodes up"
is "$(repl_sql a "SHOW statement_timeout" | tr -d ' ')" "0" "the cluster's own statement_timeout is off"

# ---- a busy server is not given up ------------------------------------------------------------
add_rows 10
lock_table b songs
run_bg ab
ok wait_until 15 waiting b
sleep 12
ok pid_running "$RUN_PID"
unlock b
run_ends_within 20 "busy b (a lock held 12 s)"
is "$RUN_RC" 0 "busy b: the run waited for the lock and is good"
repl_same "busy b: a and b identical" a b

# ---- target stopped mid-apply -----------------------------------------------------------------
add_rows 100
lock_table b songs
run_bg ab
ok wait_until 15 waiting b
freeze b
run_ends_within 30 "target stopped mid-apply"
ok test "$RUN_RC" -ne 0
like "$RUN_ERR" "node 'b' did not answer" "the error names b"
like "$RUN_ERR" "second connection" "... and says a second connection got no answer either"
thaw b
unlock b
catch_up "after the target was stopped"

# ---- source stopped mid-COPY ------------------------------------------------------------------
add_rows 20000
lock_table a songs
run_bg ab
ok wait_until 15 in_copy b 'FROM STDIN'
ok wait_until 5 waiting a
freeze a
run_ends_within 30 "source stopped mid-COPY"
ok test "$RUN_RC" -ne 0
like "$RUN_ERR" "node 'a' did not answer" "the error names a"
thaw a
unlock a
catch_up "after the source was stopped"

# ---- probe_after = 0: no probe ----------------------------------------------------------------
repl_config "$CONF probe_after = 0;"
add_rows 10
lock_table b songs
run_bg ab
ok wait_until 15 waiting b
freeze b
sleep 20
ok pid_running "$RUN_PID"
kill "$RUN_PID" 2>/dev/null || true
wait "$RUN_PID" 2>/dev/null || true
thaw b
unlock b
repl_config "$CONF probe_after = 3;"
catch_up "after the unprobed stop"

done_testing
