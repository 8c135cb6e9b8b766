#!/usr/bin/env bash
# tests/integration/t_repl_overlap.sh - the two directions of the guide's
# pair of one-way syncs (ab: a -> b, ba: b -> a) deciding the same conflicts
# at the same moment must keep the same version.
#
# Each decision merges the two vectors, so once both edges have decided
# from the concurrent state, nothing ever flows again: if they picked
# different winners, a and b differ for good.  The overlap is forced, not
# hoped for: 20 rows are changed differently on a and on b, then held
# locked (SELECT ... FOR UPDATE in an open transaction) on BOTH nodes;
# `repctl run ab` and `repctl run ba` are started together, read their
# batches and block applying them (seen in pg_locks on each node); the
# lockers commit, both runs decide at once.  Then both syncs run until quiet.
#
# Proves, for conflict_strategy source, target, latest with equal
# updated_at (falls back to the change time) and latest with distinct
# updated_at (half the rows newer on each side):
#  - both runs are good and each logs the 20 conflicts;
#  - the conflict log names the same winner on ab and on ba for every row,
#    and it is the one the rule picks whatever the edge: source: a (equal
#    ranks, the smaller node name), target: b (the greater name), latest:
#    the later change time / the greater updated_at;
#  - a and b end identical, holding the winners' versions;
#  - a later round changes nothing (no I/U/D, no conflict, tables and
#    shadow tables unchanged).
# Today source and target swap the rows (each run keeps its own source /
# target) and the pair stays different forever.
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

repl_setup a b
run_repctl add sync ab relgroup=h dbs=a:source,b:target conflict_strategy=latest
is "$RC" 0 "add sync ab"
run_repctl add sync ba relgroup=h dbs=b:source,a:target conflict_strategy=latest
is "$RC" 0 "add sync ba"

meta() { pg_sql meta postgres "$1"; }

strategy() {
	run_repctl update sync ab conflict_strategy="$1"
	is "$RC" 0 "update sync ab conflict_strategy=$1"
	run_repctl update sync ba conflict_strategy="$1"
	is "$RC" 0 "update sync ba conflict_strategy=$1"
}

# titles NODE FROM TO : "id=title,..." of songs FROM..TO
titles() {
	repl_val "$1" "SELECT coalesce(string_agg(id || '=' || title, ',' ORDER BY id), '') FROM songs WHERE id BETWEEN $2 AND $3"
}

# rows NODE FROM TO : the whole rows of songs FROM..TO
rows() {
	repl_val "$1" "SELECT coalesce(string_agg(s::text, ' ' ORDER BY id), '') FROM songs s WHERE id BETWEEN $2 AND $3"
}

# winners SYNC FROM TO : "id:winner,..." of the conflicts logged on songs
winners() {
	meta "SELECT coalesce(string_agg((pk->>'id') || ':' || winner, ',' ORDER BY (pk->>'id')::int, id), '')
	        FROM repctl.conflict WHERE sync = '$1' AND table_name = 'songs'
	         AND (pk->>'id')::int BETWEEN $2 AND $3"
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

# ---- lockers: psql sessions kept open through a fifo ---------------------------------------
# locker_open NAME NODE FD FROM TO : on NODE, BEGIN and lock songs FROM..TO,
# in a session named NAME whose input is file descriptor FD
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

# session_state NODE NAME
session_state() {
	repl_val "$1" "SELECT state FROM pg_stat_activity WHERE application_name = '$2'"
}
holding() { [[ $(session_state "$1" "$2") == 'idle in transaction' ]]; }
gone() { [[ -z $(session_state "$1" "$2") ]]; }

# blocked NODE NAME : some other backend on NODE waits for a lock NAME holds
blocked() {
	[[ $(repl_val "$1" "SELECT count(*) FROM pg_stat_activity w
	                     WHERE w.wait_event_type = 'Lock'
	                       AND (SELECT pid FROM pg_stat_activity WHERE application_name = '$2')
	                           = ANY (pg_catalog.pg_blocking_pids(w.pid))") -ge 1 ]]
}

# must MSG CMD... : a step the rest depends on; stop the test when it fails
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

# ---- runs in the background --------------------------------------------------------------
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

# bg_wait SYNC : wait for it; sets RUN_RC RUN_OUT RUN_ERR RUN_C like repl_run
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
	if [[ $RUN_ERR == *AddressSanitizer* || $RUN_ERR == *LeakSanitizer* || $RUN_ERR == *"runtime error:"* ]]; then
		fail "no sanitizer report from the background run $s" "$RUN_ERR"
	fi
}

# overlap ROUND FROM TO : lock songs FROM..TO on a and on b, start ab and ba,
# wait until each blocks on the other's target, release both, wait for both
ROUND_FD=7
overlap() {
	local r=$1 from=$2 to=$3 fa fb
	fa=$ROUND_FD fb=$((ROUND_FD + 1))
	ROUND_FD=$((ROUND_FD + 2))
	locker_open "lock_a_$r" a "$fa" "$from" "$to"
	locker_open "lock_b_$r" b "$fb" "$from" "$to"
	must "$r: the locker holds songs $from..$to on a" wait_until 20 holding a "lock_a_$r"
	must "$r: the locker holds songs $from..$to on b" wait_until 20 holding b "lock_b_$r"
	bg_run ab
	bg_run ba
	# ab applies on b, ba applies on a: each must be waiting for the locker
	must "$r: ab read its batch and waits for the lock on b" wait_until 60 blocked b "lock_b_$r"
	must "$r: ba read its batch and waits for the lock on a" wait_until 60 blocked a "lock_a_$r"
	note "$r: ab blocked on b and ba blocked on a, both batches read: releasing the locks"
	locker_close "lock_a_$r" "$fa"
	locker_close "lock_b_$r" "$fb"
	ok wait_until 20 gone a "lock_a_$r"
	ok wait_until 20 gone b "lock_b_$r"
	bg_wait ab
	is "$RUN_RC/$RUN_C" "0/$((to - from + 1))" "$r: ab (run at the same time as ba) good, decided every conflict"
	bg_wait ba
	is "$RUN_RC/$RUN_C" "0/$((to - from + 1))" "$r: ba (run at the same time as ab) good, decided every conflict"
}

# settle ROUND FROM TO WANT_TITLES WANT_WINNERS
settle() {
	local r=$1 from=$2 to=$3 want=$4 wantw=$5 sa sb sha shb rc
	is "$(winners ab "$from" "$to")" "$wantw" "$r: ab's decisions (winner per row)"
	is "$(winners ba "$from" "$to")" "$wantw" "$r: ba's decisions name the same winners"
	rc=0
	repl_converge 5 ab ba || rc=$?
	is "$rc" 0 "$r: ab and ba quiet again"
	is "$(titles a "$from" "$to")" "$want" "$r: a holds the winners' versions"
	is "$(titles b "$from" "$to")" "$want" "$r: b holds the winners' versions"
	is "$(rows b "$from" "$to")" "$(rows a "$from" "$to")" "$r: a and b hold the same rows $from..$to"
	sa=$(repl_sums a) sb=$(repl_sums b) sha=$(repl_shadow_sums a) shb=$(repl_shadow_sums b)
	repl_run ab
	is "$RUN_RC/$RUN_I/$RUN_U/$RUN_D/$RUN_C" 0/0/0/0/0 "$r: a later ab changes nothing"
	repl_run ba
	is "$RUN_RC/$RUN_I/$RUN_U/$RUN_D/$RUN_C" 0/0/0/0/0 "$r: a later ba changes nothing"
	is "$(repl_sums a)$(repl_shadow_sums a)" "$sa$sha" "$r: a (rows and versions) unchanged by the later round"
	is "$(repl_sums b)$(repl_shadow_sums b)" "$sb$shb" "$r: b (rows and versions) unchanged by the later round"
}

# want_list FROM TO EXPR : "id=title,..." with EXPR a bash expression of $i
want_list() {
	local from=$1 to=$2 expr=$3 i out=''
	for ((i = from; i <= to; i++)); do
		out+="${out:+,}$i=$(eval "$expr")"
	done
	printf '%s' "$out"
}

# ---- converged start: songs 1..100 ---------------------------------------------------------
pg_sql a "$REPL_DB" "INSERT INTO songs (id, title, updated_at) SELECT g, 'orig ' || g, '2024-01-01 00:00:00+00' FROM generate_series(1, 100) g"
rc=0
repl_converge 5 ab ba || rc=$?
is "$rc" 0 "initial copy: quiet"
repl_same "initial copy" a b

# ---- source: equal ranks (a first in ab, b first in ba): the smaller name, a -----------------
strategy source
pg_sql a "$REPL_DB" "UPDATE songs SET title = 'A' || id, updated_at = '2024-06-01+00' WHERE id BETWEEN 1 AND 20"
pg_sql b "$REPL_DB" "UPDATE songs SET title = 'B' || id, updated_at = '2024-06-05+00' WHERE id BETWEEN 1 AND 20"
overlap source 1 20
# shellcheck disable=SC2016 # $i is expanded by want_list
settle source 1 20 "$(want_list 1 20 'echo "A$i"')" "$(want_list 1 20 'echo a' | tr '=' ':')"

# ---- target: the mirror, the greater name, b --------------------------------------------------
strategy target
pg_sql a "$REPL_DB" "UPDATE songs SET title = 'A' || id, updated_at = '2024-06-05+00' WHERE id BETWEEN 21 AND 40"
pg_sql b "$REPL_DB" "UPDATE songs SET title = 'B' || id, updated_at = '2024-06-01+00' WHERE id BETWEEN 21 AND 40"
overlap target 21 40
# shellcheck disable=SC2016
settle target 21 40 "$(want_list 21 40 'echo "B$i"')" "$(want_list 21 40 'echo b' | tr '=' ':')"

# ---- latest, equal updated_at (update_all): the later change time, a's ------------------------
strategy latest
pg_sql b "$REPL_DB" "UPDATE songs SET title = 'B' || id WHERE id BETWEEN 41 AND 60"
pg_sql a "$REPL_DB" "UPDATE songs SET title = 'A' || id WHERE id BETWEEN 41 AND 60"
is "$(repl_val a "SELECT count(DISTINCT updated_at) FROM songs WHERE id BETWEEN 41 AND 60")$(repl_val b "SELECT count(DISTINCT updated_at) FROM songs WHERE id BETWEEN 41 AND 60")" \
	11 "latest/equal: updated_at left alone on both sides"
overlap latest-equal 41 60
# shellcheck disable=SC2016
settle latest-equal 41 60 "$(want_list 41 60 'echo "A$i"')" "$(want_list 41 60 'echo a' | tr '=' ':')"

# ---- latest, distinct updated_at: odd ids newer on a, even ids newer on b ---------------------
pg_sql a "$REPL_DB" "UPDATE songs SET title = 'A' || id, updated_at = CASE WHEN id % 2 = 1 THEN '2024-07-02+00'::timestamptz ELSE '2024-07-01+00' END WHERE id BETWEEN 61 AND 80"
pg_sql b "$REPL_DB" "UPDATE songs SET title = 'B' || id, updated_at = CASE WHEN id % 2 = 1 THEN '2024-07-01+00'::timestamptz ELSE '2024-07-02+00' END WHERE id BETWEEN 61 AND 80"
overlap latest 61 80
# shellcheck disable=SC2016
settle latest 61 80 "$(want_list 61 80 '((i % 2)) && echo "A$i" || echo "B$i"')" \
	"$(want_list 61 80 '((i % 2)) && echo a || echo b' | tr '=' ':')"

repl_same "at the end" a b
done_testing
