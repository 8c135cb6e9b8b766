#!/usr/bin/env bash
# tests/integration/t_repl_future_clamp.sh - under latest, a conflict column
# value "in the future" (clock.future_limit) is judged against the version's
# own change time, never against the clock at the moment of the decision:
# the two edges of a pair of one-way syncs that decide the same conflict
# before and after that value stops being "in the future" pick the same
# winner.
#
# With clock.future_limit = 5 s, on songs 1..5 a writes updated_at =
# now() + 20 s and b then writes updated_at = now(); on songs 6..10 the
# mirror (b's value in the future, a's later and ordinary).  The future value
# is 20 s past its own change time, so it is not trusted: both versions
# compete with their change times, and the later change wins (b on 1..5, a
# on 6..10), whenever and wherever it is decided.
#
# The two decisions are forced to straddle the boundary: the rows are held
# locked on a and on b, `repctl run ab` and `repctl run ba` start together,
# read their batches and block (pg_locks); b's lock is released at once, so
# ab decides while the values are still more than 5 s ahead of the clock;
# then the test waits (polling the servers' clock) until they are not, and
# releases a's lock, so ba decides from the same concurrent versions, later.
#
# Proves:
#  - ab and ba each log the 10 conflicts, with the same winner per row (b on
#    1..5, a on 6..10), and both say a future value was clamped;
#  - a and b end identical and a later round changes nothing.
# Today the early decision clamps (the value is beyond now + 5 s) and the
# late one does not (it no longer is): the edges pick different winners and
# the merged vectors keep a and b different for good.
# shellcheck disable=SC2317 # helpers are called through wait_until / ok
# shellcheck disable=SC2153 # RUN_* are set by repl_run
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

LIMIT=5  # clock.future_limit, seconds
AHEAD=20 # how far the future values are ahead of their change time

repl_setup a b
repl_config "clock = { future_limit = $LIMIT; };"
run_repctl add sync ab relgroup=h dbs=a:source,b:target conflict_strategy=latest
is "$RC" 0 "add sync ab"
run_repctl add sync ba relgroup=h dbs=b:source,a:target conflict_strategy=latest
is "$RC" 0 "add sync ba"

meta() { pg_sql meta postgres "$1"; }

titles() {
	repl_val "$1" "SELECT coalesce(string_agg(id || '=' || title, ',' ORDER BY id), '') FROM songs WHERE id BETWEEN $2 AND $3"
}

rows() {
	repl_val "$1" "SELECT coalesce(string_agg(s::text, ' ' ORDER BY id), '') FROM songs s WHERE id BETWEEN $2 AND $3"
}

winners() {
	meta "SELECT coalesce(string_agg((pk->>'id') || ':' || winner, ',' ORDER BY (pk->>'id')::int, id), '')
	        FROM repctl.conflict WHERE sync = '$1' AND table_name = 'songs'
	         AND (pk->>'id')::int BETWEEN $2 AND $3"
}

# clamped SYNC : conflicts of SYNC on songs whose rule says a future value was clamped
clamped() {
	meta "SELECT count(*) FROM repctl.conflict WHERE sync = '$1' AND table_name = 'songs' AND rule LIKE '%clamped%'"
}

# ---- processes started in the background (lockers, runs), stopped at exit if still running
declare -A BG_PID=()
LOCKER_FDS=() # write ends of the lockers' fifos held by this shell
bg_cleanup() {
	local k
	for k in "${!BG_PID[@]}"; do
		[[ -z ${BG_PID[$k]} ]] || kill "${BG_PID[$k]}" 2>/dev/null || true
	done
}
cleanup_push bg_cleanup

# locker_close NAME FD : commit, end the session, wait for it
locker_close() {
	local f keep=()
	echo "COMMIT;" >&"$2"
	eval "exec $2>&-"
	for f in "${LOCKER_FDS[@]}"; do
		[[ $f == "$2" ]] || keep+=("$f")
	done
	LOCKER_FDS=("${keep[@]}")
	if ! wait_until 30 ended "${BG_PID[$1]}"; then
		fail "the session $1 ends once its input is closed"
		return 0
	fi
	wait "${BG_PID[$1]}" || true
	BG_PID[$1]=''
}
ended() { ! pid_running "$1"; }

# ---- lockers, background runs (see t_repl_overlap.sh) --------------------------------------
locker_open() {
	local name=$1 node=$2 fd=$3 fifo=$TEST_TMP/$1.fifo
	mkfifo "$fifo"
	# the session must not inherit the write ends of the other lockers'
	# fifos, or closing one of them would not end that locker's session
	(
		for f in "${LOCKER_FDS[@]}"; do
			eval "exec $f>&-"
		done
		repl_psql "$node" <"$fifo" >"$TEST_TMP/$name.log" 2>&1
	) &
	BG_PID[$name]=$!
	eval "exec $fd>\"\$fifo\""
	LOCKER_FDS+=("$fd")
	echo "SET application_name = '$name';
	      BEGIN; SELECT id FROM songs WHERE id BETWEEN $4 AND $5 ORDER BY id FOR UPDATE;" >&"$fd"
}

session_state() {
	repl_val "$1" "SELECT state FROM pg_stat_activity WHERE application_name = '$2'"
}
holding() { [[ $(session_state "$1" "$2") == 'idle in transaction' ]]; }
gone() { [[ -z $(session_state "$1" "$2") ]]; }

blocked() {
	[[ $(repl_val "$1" "SELECT count(*) FROM pg_stat_activity w
	                     WHERE w.wait_event_type = 'Lock'
	                       AND (SELECT pid FROM pg_stat_activity WHERE application_name = '$2')
	                           = ANY (pg_catalog.pg_blocking_pids(w.pid))") -ge 1 ]]
}

must() {
	local msg=$1 f
	shift
	if "$@" >/dev/null 2>&1; then
		pass "$msg"
		return 0
	fi
	fail "$msg"
	for f in "$TEST_TMP"/lock_*.log "$TEST_TMP"/bg.*; do
		[[ -s $f ]] && diag "$f: $(head -c 2000 "$f")"
	done
	exit 1
}

bg_run() {
	local s=$1
	(
		for f in "${LOCKER_FDS[@]}"; do
			eval "exec $f>&-"
		done
		exec "$REPCTL" run "$s" >"$TEST_TMP/bg.$s.out" 2>"$TEST_TMP/bg.$s.err"
	) &
	BG_PID[$s]=$!
}

bg_wait() {
	local s=$1 re='I/U/D ([0-9]+)/([0-9]+)/([0-9]+), ([0-9]+) conflict'
	RUN_RC=0
	wait "${BG_PID[$s]}" || RUN_RC=$?
	BG_PID[$s]=''
	RUN_OUT=$(<"$TEST_TMP/bg.$s.out")
	RUN_ERR=$(<"$TEST_TMP/bg.$s.err")
	RUN_C=-1
	[[ $RUN_OUT =~ $re ]] && RUN_C=${BASH_REMATCH[4]}
	printf '#   run %s (background) => %s: %s\n' "$s" "$RUN_RC" "$RUN_OUT"
	grep -v '^repctl: conflict on ' <<<"$RUN_ERR" | sed 's/^/#   stderr: /' || true
	grep -m3 '^repctl: conflict on ' <<<"$RUN_ERR" | sed 's/^/#   e.g. /' || true
	if [[ $RUN_ERR == *AddressSanitizer* || $RUN_ERR == *LeakSanitizer* || $RUN_ERR == *"runtime error:"* ]]; then
		fail "no sanitizer report from the background run $s" "$RUN_ERR"
	fi
}

# future NODE FROM TO : the newest updated_at of songs FROM..TO on NODE, epoch seconds
future() {
	repl_val "$1" "SELECT extract(epoch FROM max(updated_at)) FROM songs WHERE id BETWEEN $2 AND $3"
}

# ahead EPOCH : seconds EPOCH is ahead of the clock (one decimal)
ahead() {
	awk -v f="$1" -v n="$EPOCHREALTIME" 'BEGIN { printf "%.1f", f - n }'
}

# beyond SECS : both future values are more than SECS ahead of the clock
beyond() {
	local x
	for x in "$(ahead "$FUT_A")" "$(ahead "$FUT_B")"; do
		awk -v x="$x" -v l="$1" 'BEGIN { exit !(x > l) }' || return 1
	done
}

# trusted_now : neither future value is beyond the clock + the limit any more,
# with 2 s to spare (the old rule compared with the whole seconds of time())
trusted_now() {
	local x
	for x in "$(ahead "$FUT_A")" "$(ahead "$FUT_B")"; do
		awk -v x="$x" -v l="$LIMIT" 'BEGIN { exit !(x < l - 2) }' || return 1
	done
}

# ---- converged start ------------------------------------------------------------------------
pg_sql a "$REPL_DB" "INSERT INTO songs (id, title, updated_at) SELECT g, 'orig ' || g, '2024-01-01 00:00:00+00' FROM generate_series(1, 10) g"
rc=0
repl_converge 5 ab ba || rc=$?
is "$rc" 0 "initial copy: quiet"
repl_same "initial copy" a b

# ---- the conflicts: each future value, then a later ordinary change on the other side --------
pg_sql a "$REPL_DB" "UPDATE songs SET title = 'A' || id, updated_at = now() + interval '$AHEAD s' WHERE id BETWEEN 1 AND 5"
pg_sql b "$REPL_DB" "UPDATE songs SET title = 'B' || id, updated_at = now() + interval '$AHEAD s' WHERE id BETWEEN 6 AND 10"
pg_sql b "$REPL_DB" "UPDATE songs SET title = 'B' || id, updated_at = now() WHERE id BETWEEN 1 AND 5"
pg_sql a "$REPL_DB" "UPDATE songs SET title = 'A' || id, updated_at = now() WHERE id BETWEEN 6 AND 10"
FUT_A=$(future a 1 5) FUT_B=$(future b 6 10)
note "a's values on 1..5 are $(ahead "$FUT_A") s ahead, b's on 6..10 $(ahead "$FUT_B") s ahead (limit $LIMIT s)"

locker_open lock_a a 7 1 10
locker_open lock_b b 8 1 10
must "the locker holds songs 1..10 on a" wait_until 20 holding a lock_a
must "the locker holds songs 1..10 on b" wait_until 20 holding b lock_b
bg_run ab
bg_run ba
must "ab read its batch and waits for the lock on b" wait_until 60 blocked b lock_b
must "ba read its batch and waits for the lock on a" wait_until 60 blocked a lock_a

# ab decides now, while the future values are still beyond the clock + the limit
locker_close lock_b 8
bg_wait ab
is "$RUN_RC/$RUN_C" 0/10 "ab (early) good, 10 conflicts"
note "ab done with the future values still $(ahead "$FUT_A") s / $(ahead "$FUT_B") s ahead (limit $LIMIT s)"
# (a precondition of the old rule's failure only: the rule under test gives
# the same winners whenever it decides, so a slow machine is no failure)
if ! beyond "$LIMIT"; then
	note "ab came late (the machine is slow for the $AHEAD s margin): this run does not straddle the boundary"
fi

# ba decides from the same concurrent versions once they are no longer "in the future"
must "the future values come within now + future_limit" wait_until 60 trusted_now
note "now the values are $(ahead "$FUT_A") s / $(ahead "$FUT_B") s ahead: releasing a's lock"
locker_close lock_a 7
ok wait_until 20 gone a lock_a
bg_wait ba
is "$RUN_RC/$RUN_C" 0/10 "ba (late) good, 10 conflicts"

# ---- the same winners on both edges ------------------------------------------------------------
want_w='1:b,2:b,3:b,4:b,5:b,6:a,7:a,8:a,9:a,10:a'
is "$(winners ab 1 10)" "$want_w" "ab (before the boundary): the later change wins, the future value is not trusted"
is "$(winners ba 1 10)" "$want_w" "ba (after the boundary): the same winners"
is "$(clamped ab)" 10 "ab: every decision says a future value was clamped"
is "$(clamped ba)" 10 "ba: every decision says a future value was clamped"

rc=0
repl_converge 5 ab ba || rc=$?
is "$rc" 0 "ab and ba quiet again"
want='1=B1,2=B2,3=B3,4=B4,5=B5,6=A6,7=A7,8=A8,9=A9,10=A10'
is "$(titles a 1 10)" "$want" "a holds the winners' versions"
is "$(titles b 1 10)" "$want" "b holds the winners' versions"
is "$(rows b 1 10)" "$(rows a 1 10)" "a and b hold the same rows"
repl_same "after both decisions" a b

sa=$(repl_sums a) sb=$(repl_sums b) sha=$(repl_shadow_sums a) shb=$(repl_shadow_sums b)
repl_run ab
is "$RUN_RC/$RUN_I/$RUN_U/$RUN_D/$RUN_C" 0/0/0/0/0 "a later ab changes nothing"
repl_run ba
is "$RUN_RC/$RUN_I/$RUN_U/$RUN_D/$RUN_C" 0/0/0/0/0 "a later ba changes nothing"
is "$(repl_sums a)$(repl_shadow_sums a)" "$sa$sha" "a (rows and versions) unchanged by the later round"
is "$(repl_sums b)$(repl_shadow_sums b)" "$sb$shb" "b (rows and versions) unchanged by the later round"

done_testing
