#!/usr/bin/env bash
# tests/integration/t_coord_kill.sh - issue 12 item 1: the coordinator and its
# workers are SIGKILLed at random moments, many times, while all three nodes
# of a star (a <-> b, a <-> c: syncs ab, ba, ac, ca) take writes, and while
# `repctl run` is started by hand next to the workers.
#
# Proves:
#  - when the coordinator is SIGKILLed, every child it had (tracked by pid
#    before the kill) is gone within 5 s (no orphaned worker goes on
#    replicating), and `repctl start` right away succeeds (no "already
#    running");
#  - after each round, exactly one presence lock per sync is held on the
#    metadata database (pg_locks, classid 1919968118: the sync is scheduled
#    by a live coordinator) and no process of this test's repctl runs besides
#    the coordinator, its children and the hand-started runs;
#  - a SIGKILLed child (worker, runner, watcher...) is replaced: the
#    coordinator is back to its number of children within 5 s;
#  - never two runs of one sync at once: sampled every 0.25 s during the
#    test, two open runs (repctl.run, ended_at NULL) of one sync that both
#    went on to finish normally (not closed as 'interrupted') would be two
#    runs at the same moment; and afterwards, for each sync ordered by id,
#    every run started at or after the previous one ended (runs of the
#    workers and of `repctl run` alike);
#  - every run that was killed is closed (ended_at set, ok false, error
#    'interrupted...') once a later run of its sync happened;
#  - once the writers stop, the nodes converge without any command: every
#    table identical on a, b and c, and each writer's id range holds exactly
#    the rows its committed transactions left (no row lost or doubled);
#  - `repctl stop` at the end leaves no process of this test's repctl.
# REPL_SEED=N reruns with other kill moments and targets.
# shellcheck disable=SC2317,SC2046 # helpers are called through wait_until / ok; pid lists split on purpose
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

ROUNDS=${COORD_KILL_ROUNDS:-8}
SYNCS=(ab ba ac ca)

repl_setup a b c
for e in "${SYNCS[@]}"; do
	run_repctl add sync "$e" relgroup=h dbs="${e:0:1}:source,${e:1:1}:target" conflict_strategy=bucardo_latest
	is "$RC" 0 "add sync $e"
done
# the rows every writer updates (conflicts on every edge)
repl_sql a "INSERT INTO songs (id, title) SELECT g, 'shared ' || g FROM generate_series(1, 5) g"
repl_seed

meta() { pg_psql meta postgres "$@"; }
same_abc() {
	local sa
	sa=$(repl_sums a)
	[[ $sa == "$(repl_sums b)" && $sa == "$(repl_sums c)" ]]
}
pids_alive() {
	local p
	for p in "$@"; do
		if pid_running "$p"; then
			return 0
		fi
	done
	return 1
}
none_alive() { ! pids_alive "$@"; }
# live children of the coordinator (an exited child not reaped yet is not one)
kids() {
	local p
	for p in $(pgrep -P "$cpid" || true); do
		if pid_running "$p"; then
			echo "$p"
		fi
	done
}
nkids() { kids | wc -l; }
# one granted worker presence lock per sync (and no more)
worker_locks() {
	meta -c "SELECT count(*) || '/' || count(DISTINCT objid) FROM pg_catalog.pg_locks
	          WHERE locktype = 'advisory' AND classid = 1919968118 AND objsubid = 2 AND granted"
}
one_worker_lock_each() { [[ $(worker_locks) == "${#SYNCS[@]}/${#SYNCS[@]}" ]]; }
# processes of our repctl other than the coordinator, its children and hand-started runs
strays() {
	local p k out=''
	local -A known=(["$cpid"]=1)
	for k in $(pgrep -P "$cpid" || true) "${runpids[@]}"; do
		known[$k]=1
	done
	for p in $(repl_daemon_pids); do
		[[ -n ${known[$p]:-} ]] || out+="$p "
	done
	printf '%s' "$out"
}
no_strays() { [[ -z $(strays) ]]; }
describe() {
	local p
	for p in "$@"; do
		printf '%s ppid=%s %s\n' "$p" "$(awk '{print $4}' "/proc/$p/stat" 2>/dev/null || echo -)" \
			"$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null || true)"
	done
}

runpids=()
# whatever is left at the end (orphans of the old coordinators, hand runs):
# stop the coordinator, then kill what remains, by pid
kill_leftovers() {
	local p left
	"$REPCTL" stop >/dev/null 2>&1 || true
	left=$(repl_daemon_pids)
	[[ -z $left ]] && return 0
	echo "# killing leftover repctl processes: $left"
	for p in $left; do kill -9 "$p" 2>/dev/null || true; done
}

repl_start
pidfile=$REPCTL_STATE_DIR/repctl.pid
cpid=$(<"$pidfile")
cleanup_push kill_leftovers
workers_up() { (($(nkids) >= ${#SYNCS[@]})); }
ok wait_until 15 workers_up
ok wait_until 30 same_abc
note "coordinator $cpid, children: $(pgrep -P "$cpid" | tr '\n' ' ')"

# ---- sampler: open runs of one sync, several at a time ----------------------------------
rm -f "$TEST_TMP/sampler.stop"
(
	trap - ERR
	set +e
	end=$((SECONDS + 170))
	while [[ ! -e $TEST_TMP/sampler.stop ]] && ((SECONDS < end)); do
		meta -c "SELECT sync || E'\\t{' || string_agg(id::text, ',' ORDER BY id) || '}' FROM repctl.run
		          WHERE ended_at IS NULL GROUP BY sync HAVING count(*) > 1" >>"$TEST_TMP/open_runs" 2>/dev/null
		echo . >>"$TEST_TMP/samples"
		sleep 0.25
	done
) &
sampler=$!
cleanup_push "touch $TEST_TMP/sampler.stop; kill $sampler 2>/dev/null || true"

repl_writers_start a b c
sleep 2

# ---- kill, restart, many times --------------------------------------------------------------
coord_kills=0 worker_kills=0
for ((r = 1; r <= ROUNDS; r++)); do
	if ((r == 1)); then
		what=coordinator
	elif ((r == 2)); then
		what=worker
	elif ((RANDOM % 3 == 0)); then
		what=worker
	else
		what=coordinator
	fi
	# a hand-started run next to the workers (it must wait for the worker's run)
	if ((r % 3 == 0)); then
		s=${SYNCS[RANDOM % ${#SYNCS[@]}]}
		timeout 120 "$REPCTL" run "$s" >"$TEST_TMP/handrun.$r.out" 2>&1 &
		runpids+=("$!")
		note "round $r: repctl run $s by hand (pid $!)"
	fi
	note "round $r at ${SECONDS}s"
	delay_ms=$((300 + RANDOM % 1700))
	sleep "$((delay_ms / 1000)).$(printf '%03d' $((delay_ms % 1000)))"
	if [[ $what == coordinator ]]; then
		coord_kills=$((coord_kills + 1))
		mapfile -t kids < <(kids)
		note "round $r: after ${delay_ms} ms, SIGKILL coordinator $cpid (children: ${kids[*]})"
		kill -9 "$cpid"
		if wait_until 5 none_alive "${kids[@]}"; then
			pass "round $r: every child of the killed coordinator exited within 5 s"
		else
			fail "round $r: every child of the killed coordinator exited within 5 s" \
				"still alive: $(describe "${kids[@]}")"
			# kill them (by pid) so the next rounds start clean
			for p in "${kids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
		fi
		run_repctl start
		is "$RC" 0 "round $r: repctl start right after the kill succeeds"
		unlike "$ERR" "already running" "round $r: ... without 'already running'"
		if [[ $RC != 0 ]]; then
			diag "start: $ERR"
			# keep the test going: wait until a start is accepted
			try_start() { run_repctl start >/dev/null && [[ $RC == 0 ]]; }
			wait_until 20 try_start || true
		fi
		cpid=$(<"$pidfile")
		ok wait_until 15 workers_up
	else
		worker_kills=$((worker_kills + 1))
		mapfile -t kids < <(kids)
		before=${#kids[@]}
		victim=${kids[RANDOM % before]}
		note "round $r: after ${delay_ms} ms, SIGKILL child $victim of coordinator $cpid"
		kill -9 "$victim"
		back() { ! pid_running "$victim" && (($(nkids) >= before)); }
		ok wait_until 5 back
	fi
	if wait_until 5 one_worker_lock_each; then
		pass "round $r: one worker presence lock per sync"
	else
		fail "round $r: one worker presence lock per sync" "granted/distinct: $(worker_locks)"
	fi
	if wait_until 2 no_strays; then
		pass "round $r: no repctl process besides the coordinator, its children and the hand runs"
	else
		fail "round $r: no repctl process besides the coordinator, its children and the hand runs" \
			"coordinator $cpid; others: $(describe $(strays))"
	fi
done
note "$coord_kills coordinator kill(s), $worker_kills worker kill(s)"

note "kill rounds done after ${SECONDS}s"
repl_writers_stop
for p in "${runpids[@]}"; do
	rc=0
	wait "$p" || rc=$?
	is "$rc" 0 "the hand-started run (pid $p) ended well"
done
for ((r = 1; r <= ROUNDS; r++)); do
	[[ -s $TEST_TMP/handrun.$r.out ]] && note "hand run $r: $(tr '\n' ' ' <"$TEST_TMP/handrun.$r.out")"
done
runpids=()

# ---- converge without any command ------------------------------------------------------------
if wait_until 60 same_abc; then
	pass "a, b and c converge once the writes stop"
else
	fail "a, b and c converge once the writes stop"
fi
# a final good run of every sync (it also closes the runs killed earlier)
for e in "${SYNCS[@]}"; do
	run_repctl kick "$e" --wait --timeout=60
	is "$RC" 0 "final run of $e"
done
touch "$TEST_TMP/sampler.stop"
wait "$sampler" || true
repl_same "after $ROUNDS kill rounds" a b c
for n in a b c; do
	for m in a b c; do
		is "$(repl_val "$m" "SELECT count(*) FROM songs WHERE id > ${REPL_WBASE[$n]} AND id < ${REPL_WBASE[$n]} + 1000000")" \
			"${REPL_WROTE[$n]}" "$m holds exactly the rows the writer on $n left"
	done
done

note "converged after ${SECONDS}s"
# ---- never two runs of one sync --------------------------------------------------------------
note "$(wc -l <"$TEST_TMP/samples") samples of open runs"
# each sample: the open runs of one sync at one moment; two of them that went on to
# finish normally (not closed later as 'interrupted') ran at the same time
both=$({
	echo "CREATE TEMP TABLE s (sync text, ids bigint[]); COPY s FROM STDIN;"
	sort -u "$TEST_TMP/open_runs" 2>/dev/null || true
	echo '\.'
	cat <<-'SQL'
		SELECT format('sync %s: runs %s in progress at one moment, %s of them finished normally', x.sync, x.ids, n)
		  FROM (SELECT DISTINCT sync, ids FROM s) x,
		       LATERAL (SELECT count(*) AS n FROM repctl.run r WHERE r.id = ANY (x.ids)
		                   AND r.ended_at IS NOT NULL AND coalesce(r.error, '') NOT LIKE 'interrupted%') c
		 WHERE n > 1 ORDER BY x.ids[1];
	SQL
} | meta)
note "$(grep -c . <<<"$both" || true) sampled moment(s) with two live runs of one sync"
both=$(head -n 5 <<<"$both")
is "$both" "" "sampled: never two live runs of one sync at the same moment"

overlaps=$(meta -c "SELECT format('%s: run %s started %s before run %s ended (%s)', sync, id,
                                  prev_end - started_at, prev_id, prev_end)
                      FROM (SELECT sync, id, started_at,
                                   lag(id) OVER w AS prev_id, lag(ended_at) OVER w AS prev_end
                              FROM repctl.run WINDOW w AS (PARTITION BY sync ORDER BY id)) r
                     WHERE started_at < prev_end ORDER BY sync, id")
note "$(grep -c . <<<"$overlaps" || true) run(s) started before the previous run of their sync ended"
overlaps=$(head -n 10 <<<"$overlaps")
is "$overlaps" "" "repctl.run: every run of a sync started after the previous one ended"
unclosed=$(meta -c "SELECT format('%s: run %s (started %s) never ended, later runs happened', r.sync, r.id, r.started_at)
                      FROM repctl.run r
                     WHERE r.ended_at IS NULL
                       AND EXISTS (SELECT 1 FROM repctl.run l WHERE l.sync = r.sync AND l.id > r.id)
                     ORDER BY r.id")
note "$(grep -c . <<<"$unclosed" || true) run(s) left open although later runs of their sync happened"
unclosed=$(head -n 10 <<<"$unclosed")
is "$unclosed" "" "repctl.run: every killed run is closed once a later run happened"
bad_close=$(meta -c "SELECT format('run %s of %s: ok %s, error %s', id, sync, ok, error) FROM repctl.run
                      WHERE error LIKE 'interrupted%' AND (ok IS NOT false OR ended_at IS NULL)")
is "$bad_close" "" "interrupted runs are closed with ok = false"
note "runs: $(meta -c "SELECT count(*) || ' in all, ' || count(*) FILTER (WHERE error LIKE 'interrupted%') || ' interrupted, '
                        || count(*) FILTER (WHERE ended_at IS NULL) || ' open' FROM repctl.run")"

# ---- stop: nothing left ------------------------------------------------------------------------
run_repctl stop
is "$RC" 0 "repctl stop"
nothing_left() { [[ -z $(repl_daemon_pids) ]]; }
if wait_until 10 nothing_left; then
	pass "no process of this test's repctl is left after stop"
else
	fail "no process of this test's repctl is left after stop" "$(describe $(repl_daemon_pids))"
fi
repl_no_daemon_san

done_testing
