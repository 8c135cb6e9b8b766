#!/usr/bin/env bash
# scripts/soak.sh - the randomized property test of the engine
# (tests/integration/t_repl_property.sh) with many seeds; `make soak`.
#
#   SOAK_SEEDS       number of seeds (default 50)
#   PROP_SEED_BASE   the first seed (default: a new one each time, printed)
#   REPCTL_BIN       the binary under test (default ./repctl)
#   PROP_WRITE_SECS, PROP_SEP_MS, PROP_DAEMON, PROP_TOPOLOGY, PROP_STRATEGY
#                    passed on (see the test's header)
#
# Prints one line per seed (passed / FAILED with its topology and strategy)
# and the failing seeds at the end; the whole output goes to
# tests/logs/soak.log.  A failing seed reruns alone with
# PROP_SEED_BASE=SEED PROP_SEEDS=1 bash tests/integration/t_repl_property.sh
# (same topology, strategy, writers' choices; the timing differs).
# Exit status: that of the test (0 when every seed passed).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PROP_SEEDS=${SOAK_SEEDS:-50}
PROP_SEED_BASE=${PROP_SEED_BASE:-$(($(date +%s) % 100000 + 1000))}
PROP_CONFIRM=${PROP_CONFIRM:-0}
export PROP_SEEDS PROP_SEED_BASE PROP_CONFIRM
[[ $PROP_SEEDS =~ ^[1-9][0-9]*$ && $PROP_SEED_BASE =~ ^[0-9]+$ ]] || {
	echo "soak: SOAK_SEEDS and PROP_SEED_BASE must be numbers" >&2
	exit 2
}

mkdir -p "$ROOT/tests/logs"
log=$ROOT/tests/logs/soak.log
echo "soak: seeds $PROP_SEED_BASE..$((PROP_SEED_BASE + PROP_SEEDS - 1)) with ${REPCTL_BIN:-$ROOT/repctl}; full output in ${log#"$ROOT"/}"
start=$SECONDS
set +e
bash "$ROOT/tests/integration/t_repl_property.sh" 2>&1 | tee "$log" |
	grep --line-buffered -E '^(not ok|# seed [0-9]+ (passed|FAILED)|# failing seeds|# all [0-9]+ seed|# test script exited)'
rc=${PIPESTATUS[0]}
set -e
echo "soak: exit $rc after $((SECONDS - start)) s"
exit "$rc"
