#!/usr/bin/env bash
# tests/integration/t_repl_crash.sh - crash safety: the coordinator killed
# with SIGKILL (the parent and every worker, by pid) while a large batch is
# being applied loses and duplicates nothing after a restart.
#
# Proves, on a pair of one-way syncs ab / ba under the daemon:
#  - 50k rows inserted on a in one transaction; as soon as an applier
#    backend of repctl is busy on b, `kill -9` of the coordinator (pid file)
#    and of its workers (pgrep -P of that pid only); b then holds either
#    none or all of the batch (the target transaction is atomic);
#  - `repctl start` again (stale pid file): after convergence b has exactly
#    a's rows (ordered checksums, counts, shadow keys), and a further round
#    writes nothing;
#  - the instant between the target's commit and the position update,
#    replayed deterministically by putting the edge's old position back:
#    the rerun writes nothing (I/U/D 0/0/0) and the data stays equal; the
#    same with the position gone entirely.
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

BATCH=${REPL_CRASH_ROWS:-50000}

repl_setup a b
run_repctl add sync ab relgroup=h dbs=a:source,b:target conflict_strategy=bucardo_latest
is "$RC" 0 "add sync ab"
run_repctl add sync ba relgroup=h dbs=b:source,a:target conflict_strategy=bucardo_latest
is "$RC" 0 "add sync ba"
pg_sql a "$REPL_DB" "INSERT INTO songs (id, title) SELECT g, 'start ' || g FROM generate_series(1, 100) g"

meta() { pg_sql meta postgres "$1"; }
count() { repl_val "$1" "SELECT count(*) FROM songs"; }
# an applier of repctl busy on b's archive database
applying() {
	[[ $(pg_sql b postgres "SELECT count(*) FROM pg_stat_activity WHERE datname = '$REPL_DB'
	        AND application_name = 'repctl' AND state = 'active'
	        AND query ~* '^(COPY|WITH|INSERT|SELECT 1 FROM|CREATE TEMP)'") -ge 1 ]]
}
no_repctl_backends() {
	[[ $(pg_sql b postgres "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'repctl'
	        AND state <> 'idle'") == 0 ]]
}
converged() { [[ $(repl_sums a) == "$(repl_sums b)" ]]; }
gone() { ! kill -0 "$1" 2>/dev/null; }

repl_start
pidfile=$REPCTL_STATE_DIR/repctl.pid
ok wait_until 20 converged
is "$(count b)" 100 "the start rows arrived"

# ---- kill -9 in the middle of applying a large batch ----------------------------------
killed=0
for attempt in 1 2 3; do
	before=$(count b)
	base=$((attempt * 1000000))
	pg_sql a "$REPL_DB" "INSERT INTO songs (id, title, plays, updated_at)
	                     SELECT $base + g, 'bulk $attempt/' || g || ' ' || repeat('x', 200), g, now()
	                       FROM generate_series(1, $BATCH) g"
	if wait_until 20 applying; then
		cpid=$(<"$pidfile")
		kids=$(pgrep -P "$cpid" | tr '\n' ' ' || true)
		note "attempt $attempt: applier busy on b; kill -9 coordinator $cpid and workers $kids"
		# shellcheck disable=SC2086 # one pid per word
		kill -9 "$cpid" $kids
		killed=1
		for p in $cpid $kids; do
			ok wait_until 10 eval "! pid_running $p"
		done
		after=$(count b)
		note "b had $before rows, now $after"
		if [[ $after == "$before" || $after == $((before + BATCH)) ]]; then
			pass "after the kill b holds none or all of the batch ($after rows)"
		else
			fail "after the kill b holds none or all of the batch" "before $before, batch $BATCH, now $after"
		fi
		break
	fi
	note "attempt $attempt: the batch was applied before we saw it; again"
done
is "$killed" 1 "killed the coordinator while it applied a batch"
ok wait_until 30 no_repctl_backends
# the stale pid file must not stop a new start (PID 1 may reap the killed
# processes lazily: wait until they are really gone)
ok wait_until 30 gone "$cpid"
ok test -e "$pidfile"

repl_start
ok wait_until 60 converged
repl_same "after the crash and restart" a b
is "$(count b)" "$(count a)" "b has exactly a's row count"
is "$(repl_val b "SELECT count(*) FROM songs WHERE id > 1000000")" "$(repl_val a "SELECT count(*) FROM songs WHERE id > 1000000")" \
	"every bulk row once"
is "$(repl_shadow_sums b | cut -d'|' -f1,2)" "$(repl_shadow_sums a | cut -d'|' -f1,2)" \
	"the shadow tables hold the same keys on both nodes"
run_repctl stop
is "$RC" 0 "repctl stop"
repl_run ab
is "$RUN_RC/$RUN_I/$RUN_U/$RUN_D" 0/0/0/0 "after the restart, a further run of ab writes nothing"
repl_run ba
is "$RUN_RC/$RUN_I/$RUN_U/$RUN_D" 0/0/0/0 "... nor of ba"

# ---- the instant between commit and position: rerun an applied batch -------------------
# keep a copy of the edge's position rows (whatever their shape)
meta "CREATE TABLE public.saved_position AS SELECT * FROM repctl.position WHERE sync = 'ab'"
ok test "$(meta 'SELECT count(*) FROM public.saved_position')" -ge 1
pg_sql a "$REPL_DB" "INSERT INTO songs (id, title) SELECT g, 'replay ' || g FROM generate_series(200, 1199) g;
                     UPDATE songs SET title = 'replayed update', updated_at = now() WHERE id BETWEEN 1 AND 50;
                     DELETE FROM songs WHERE id BETWEEN 51 AND 60"
repl_run ab
is "$RUN_RC/$RUN_I/$RUN_U/$RUN_D" 0/1000/50/10 "the batch: 1000 inserts, 50 updates, 10 deletes"
sums=$(repl_sums b)
shadow=$(repl_shadow_sums b)
meta "BEGIN; DELETE FROM repctl.position WHERE sync = 'ab';
      INSERT INTO repctl.position SELECT * FROM public.saved_position; COMMIT"
repl_run ab
is "$RUN_RC/$RUN_I/$RUN_U/$RUN_D/$RUN_C" 0/0/0/0/0 "rerunning the applied batch writes nothing (idempotent)"
is "$(repl_sums b)" "$sums" "b unchanged by the rerun"
is "$(repl_shadow_sums b)" "$shadow" "b's shadow tables unchanged by the rerun"
meta "DELETE FROM repctl.position WHERE sync = 'ab'"
repl_run ab
is "$RUN_RC/$RUN_I/$RUN_U/$RUN_D/$RUN_C" 0/0/0/0/0 "with no position at all: everything resent, nothing written"
is "$(repl_sums b)" "$sums" "b unchanged"
repl_run ba
is "$RUN_RC/$RUN_I/$RUN_U/$RUN_D/$RUN_C" 0/0/0/0/0 "ba: nothing to write either"
repl_same "end" a b
repl_no_daemon_san

done_testing
