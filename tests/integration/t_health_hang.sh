#!/usr/bin/env bash
# tests/integration/t_health_hang.sh - `repctl status` on a source that
# answers connections but whose count query waits on a lock (a DDL, a
# VACUUM FULL, a capture being reinstalled on the source) is bounded, and
# pays for that node once, not once per sync.
#
# Node a (its own cluster) is the source of four syncs (to h, b, c, d);
# statement_timeout is the default 1800 s.  A session on a holds ACCESS
# EXCLUSIVE on a's first shadow table.  Proves:
#  - `status --json` answers in < 15 s (before: the count waited for the
#    lock up to statement_timeout, 30 min; with a bound but no memory of
#    the failure it would wait that bound once per sync: 4 x 6 s);
#  - the four syncs' pending counts are unknown (null);
#  - once the lock is gone, the counts are numbers again.
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
repl_setup h
repl_add_node a src "archive_a"
for n in b c d; do
	repl_add_node "$n" h "archive_$n"
done
for n in h b c d; do
	run_repctl add sync "a$n" relgroup="$REPL_HERD" dbs="a:source,$n:target"
	is "$RC" 0 "add sync a$n"
done
repl_sql a "INSERT INTO artists (id, name) VALUES (1, 'one')"

run_repctl status --json
is "$RC" 0 "status --json before the lock"
like "$OUT" '"pending": 1' "the pending insert is counted"

SHADOW=$(repl_val a "SELECT shadow FROM repctl.captured ORDER BY schema_name, table_name LIMIT 1")
note "locking repctl.$SHADOW on a"
repl_psql a -c "SET application_name = 'hang_lock'; BEGIN; LOCK TABLE repctl.$SHADOW IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(600)" >/dev/null 2>&1 &
LOCK_PID=$!
cleanup_push "kill $LOCK_PID 2>/dev/null || true"
locked() { [[ $(repl_val a "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity s ON s.pid = l.pid WHERE s.application_name = 'hang_lock' AND l.mode = 'AccessExclusiveLock' AND l.granted AND l.relation = 'repctl.$SHADOW'::regclass") == 1 ]]; }
ok wait_until 20 locked

t0=${EPOCHREALTIME/[.,]/}
RC=0
OUT=$(timeout 120 "$REPCTL" status --json 2>"$TEST_TMP/status.err") || RC=$?
MS=$(((${EPOCHREALTIME/[.,]/} - t0) / 1000))
note "status --json in $MS ms (exit $RC)"
is "$RC" 0 "status --json with a's shadow locked answers (within 120 s)"
ok test "$MS" -lt 15000
is "$(grep -o '"pending": null' <<<"$OUT" | wc -l)" 4 "the four syncs' counts are unknown"

repl_val a "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'hang_lock'" >/dev/null
wait "$LOCK_PID" 2>/dev/null || true
run_repctl status --json
is "$(grep -o '"pending": null' <<<"$OUT" | wc -l)" 0 "lock gone: every count is known again"

done_testing
