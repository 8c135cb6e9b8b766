# shellcheck shell=bash
# tests/integration/lib/common.sh - sourced by every integration test.
#
# Provides:
#   ROOT, REPCTL          repo top and the repctl binary (env REPCTL_BIN overrides)
#   TEST_TMP              fresh per-test temp dir (mode 755), removed on success
#   cleanup_push CMD...   register cleanup, run in reverse order at EXIT
#   on_failure_push CMD...  register a hook run at EXIT only if the test failed
#                         (before the cleanups, e.g. to dump server logs)
#   wait_until SECS CMD...  poll CMD every 0.1 s until it succeeds; 1 on timeout
#                         (CMD's output is discarded)
#   pid_running PID       PID exists and is not a zombie
#   ok CMD... / fails CMD... / is GOT EXP MSG / like GOT RE MSG / unlike GOT RE MSG
#                         print "ok N - MSG" / "not ok N - MSG" + diagnostics;
#                         a failure is counted and the test goes on (they
#                         return 0), unless BAIL_ON_FAIL=1 (then exit 1)
#   pass MSG / fail MSG / note MSG... / diag MSG...
#   done_testing          print the plan "1..N"; exit 1 if anything failed
#   skip_all REASON       print "1..0 # SKIP REASON" and exit 0
#   run_repctl ARGS...    run $REPCTL; sets OUT, ERR, RC; never aborts under set -e
#
# Cleanup commands: with one argument the string is eval'd as shell code
# (cleanup_push "kill $pid"); with several, they are run as one command with
# exactly those arguments (cleanup_push rm -rf "$dir").

if [[ -n ${_REPCTL_COMMON_SH:-} ]]; then
	return 0
fi
_REPCTL_COMMON_SH=1

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
REPCTL=${REPCTL_BIN:-$ROOT/repctl}
export ROOT REPCTL

TEST_TMP=$(mktemp -d "${TMPDIR:-/tmp}/repctl-test.XXXXXX")
chmod 755 "$TEST_TMP"
export TEST_TMP

# Results of the last run_repctl, for the tests.
# shellcheck disable=SC2034
OUT='' ERR='' RC=0

_T_COUNT=0
_T_FAILS=0
_T_DONE=0
_T_CLEANUPS=()
_T_FAIL_HOOKS=()
_T_ERR_WHERE=''

# ---------------------------------------------------------------- cleanup --

_t_pack() {
	if (($# == 1)); then
		printf '%s' "$1"
	else
		local q
		printf -v q '%q ' "$@"
		printf '%s' "${q% }"
	fi
}

cleanup_push() {
	(($# > 0)) || return 0
	_T_CLEANUPS+=("$(_t_pack "$@")")
}

on_failure_push() {
	(($# > 0)) || return 0
	_T_FAIL_HOOKS+=("$(_t_pack "$@")")
}

_t_on_err() {
	# Remember where the last failing command was (with its call stack), for
	# the message printed if set -e aborts the test.
	local i where="${BASH_SOURCE[1]:-?}:${BASH_LINENO[0]:-?}: $1"
	for ((i = 2; i < ${#BASH_SOURCE[@]}; i++)); do
		where+=$'\n''#   called from '"${BASH_SOURCE[i]}:${BASH_LINENO[i - 1]}"
	done
	_T_ERR_WHERE=$where
}

_t_on_exit() {
	local rc=$? i failed=0
	trap - EXIT ERR
	set +e +u
	if ((rc == 0 && _T_FAILS > 0)); then
		rc=1
	fi
	if ((rc != 0)); then
		failed=1
		if ((_T_DONE == 0)); then
			printf '# test script exited with status %d before done_testing\n' "$rc"
			if [[ -n $_T_ERR_WHERE ]]; then
				printf '# last failing command: %s\n' "$_T_ERR_WHERE"
			fi
		fi
		for ((i = 0; i < ${#_T_FAIL_HOOKS[@]}; i++)); do
			(eval "${_T_FAIL_HOOKS[i]}")
		done
	fi
	# Each in a subshell: a cleanup that fails or exits cannot skip the rest.
	for ((i = ${#_T_CLEANUPS[@]} - 1; i >= 0; i--)); do
		(eval "${_T_CLEANUPS[i]}")
	done
	if [[ -d $TEST_TMP ]]; then
		if ((failed)) || [[ ${KEEP_TMP:-0} == 1 ]]; then
			printf '# test files kept in %s\n' "$TEST_TMP"
		else
			rm -rf -- "$TEST_TMP"
		fi
	fi
	exit "$rc"
}

trap _t_on_exit EXIT
set -E
trap 'exit 130' INT
trap 'exit 143' TERM
trap '_t_on_err "$BASH_COMMAND"' ERR

# ---------------------------------------------------------------- polling --

# Seconds (may be fractional, e.g. 2.5) -> microseconds.
_t_usec() {
	local s=$1 int frac
	int=${s%%.*}
	frac=''
	[[ $s == *.* ]] && frac=${s#*.}
	frac=${frac}000000
	frac=${frac:0:6}
	echo $((10#${int:-0} * 1000000 + 10#$frac))
}

_t_now_usec() {
	local t=${EPOCHREALTIME/[.,]/}
	echo $((10#$t))
}

wait_until() {
	local timeout=$1 deadline
	shift
	deadline=$(($(_t_now_usec) + $(_t_usec "$timeout")))
	while :; do
		if "$@" >/dev/null 2>&1; then
			return 0
		fi
		if (($(_t_now_usec) >= deadline)); then
			return 1
		fi
		sleep 0.1
	done
}

# pid_running PID : true if PID exists and is not a zombie.  (Here PID 1
# reaps orphans lazily, so a stopped daemon can linger as a zombie for a
# while and "kill -0" alone would still see it.)
pid_running() {
	local pid=${1:-} stat=''
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 0
	stat=${stat##*) }
	[[ ${stat:0:1} != Z ]]
}

# ------------------------------------------------------------- assertions --

# Location of the test line that called the public assertion: the frame
# $1 levels above the caller of _t_where.
_t_where() {
	local n=$((${1:-1} + 1))
	local src=${BASH_SOURCE[n]:-?} line=${BASH_LINENO[n - 1]:-?}
	src=${src#"$ROOT"/}
	printf '%s:%s' "$src" "$line"
}

_t_indent() {
	sed 's/^/#     /'
}

# _t_result PASSED(0|1) MSG WHERE [DIAG-TEXT]
_t_result() {
	local passed=$1 msg=$2 where=$3 diag=${4:-}
	_T_COUNT=$((_T_COUNT + 1))
	msg=${msg//$'\n'/ }
	if ((passed)); then
		printf 'ok %d - %s\n' "$_T_COUNT" "$msg"
		return 0
	fi
	_T_FAILS=$((_T_FAILS + 1))
	printf 'not ok %d - %s\n' "$_T_COUNT" "$msg"
	printf '#   Failed test at %s\n' "$where"
	if [[ -n $diag ]]; then
		printf '%s\n' "$diag" | _t_indent
	fi
	if [[ ${BAIL_ON_FAIL:-0} == 1 ]]; then
		printf '# BAIL_ON_FAIL=1: stopping at the first failure\n'
		exit 1
	fi
	# A failed check is counted, not fatal: return 0 so that set -e does not
	# abort the test; done_testing / the EXIT trap turn failures into exit 1.
	return 0
}

pass() { _t_result 1 "${1:-}" "$(_t_where 1)"; }
fail() { _t_result 0 "${1:-}" "$(_t_where 1)" "${2:-}"; }

note() { printf '# %s\n' "$*"; }
diag() { printf '# %s\n' "$*" >&2; }

_t_cmd_str() {
	local q
	printf -v q '%q ' "$@"
	printf '%s' "${q% }"
}

# Run CMD in the current shell (so functions can set variables) with
# stdout+stderr going to $TEST_TMP/.assert.out; returns CMD's status.
_t_run_captured() {
	"$@" >"$TEST_TMP/.assert.out" 2>&1
}

# ok CMD... : passes when CMD exits 0.
ok() {
	local where out rc=0
	where=$(_t_where 1)
	_t_run_captured "$@" || rc=$?
	out=$(<"$TEST_TMP/.assert.out")
	if ((rc == 0)); then
		_t_result 1 "$(_t_cmd_str "$@")" "$where"
	else
		_t_result 0 "$(_t_cmd_str "$@")" "$where" \
			"command exited with status $rc; output:"$'\n'"$out"
	fi
}

# fails CMD... : passes when CMD exits non-zero.
fails() {
	local where out rc=0
	where=$(_t_where 1)
	_t_run_captured "$@" || rc=$?
	out=$(<"$TEST_TMP/.assert.out")
	if ((rc != 0)); then
		_t_result 1 "fails: $(_t_cmd_str "$@")" "$where"
	else
		_t_result 0 "fails: $(_t_cmd_str "$@")" "$where" \
			"command unexpectedly succeeded; output:"$'\n'"$out"
	fi
}

# is GOT EXPECTED MSG
is() {
	local got=$1 exp=$2 msg=${3:-} where
	where=$(_t_where 1)
	if [[ $got == "$exp" ]]; then
		_t_result 1 "$msg" "$where"
	else
		_t_result 0 "$msg" "$where" \
			"     got: '$got'"$'\n'"expected: '$exp'"
	fi
}

# like GOT REGEX MSG  (grep -E; matches if any line matches)
like() {
	local got=$1 re=$2 msg=${3:-} where
	where=$(_t_where 1)
	# A here-string, not printf | grep -q: grep -q exits at the first match,
	# and under pipefail the SIGPIPE that printf may then get on a long
	# $got would turn a match into a failure (and a pass of unlike).
	if grep -Eq -- "$re" <<<"$got"; then
		_t_result 1 "$msg" "$where"
	else
		_t_result 0 "$msg" "$where" \
			"                  got: '$got'"$'\n'"doesn't match (ERE): '$re'"
	fi
}

# unlike GOT REGEX MSG
unlike() {
	local got=$1 re=$2 msg=${3:-} where
	where=$(_t_where 1)
	if ! grep -Eq -- "$re" <<<"$got"; then
		_t_result 1 "$msg" "$where"
	else
		_t_result 0 "$msg" "$where" \
			"           got: '$got'"$'\n'"matches (ERE): '$re'"
	fi
}

done_testing() {
	_T_DONE=1
	printf '1..%d\n' "$_T_COUNT"
	if ((_T_FAILS > 0)); then
		printf '# Looks like you failed %d test(s) of %d.\n' "$_T_FAILS" "$_T_COUNT"
		exit 1
	fi
	exit 0
}

skip_all() {
	_T_DONE=1
	printf '1..0 # SKIP %s\n' "${1:-}"
	exit 0
}

# ------------------------------------------------------------------ repctl --

# run_repctl ARGS... : OUT=stdout, ERR=stderr, RC=exit status.
# shellcheck disable=SC2034 # OUT/ERR/RC are for the caller
run_repctl() {
	local o="$TEST_TMP/.repctl.out" e="$TEST_TMP/.repctl.err"
	RC=0
	"$REPCTL" "$@" >"$o" 2>"$e" || RC=$?
	OUT=$(<"$o")
	ERR=$(<"$e")
	rm -f -- "$o" "$e"
	printf '# $ repctl %s  => %d\n' "$(_t_cmd_str "$@")" "$RC"
	return 0
}
