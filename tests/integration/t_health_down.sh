#!/usr/bin/env bash
# tests/integration/t_health_down.sh - `repctl status --health` answers in
# well under a second whatever the state of the fleet (issue 11, item 8).
#
# A hub h and three clients a, b, c (syncs ah, bh, ch: every client is a
# source), the clients' databases on one cluster, the default
# connect_timeout (10 s), a coordinator running.  The clients' cluster is
# then hung (SIGSTOP of its postmaster and children, all started by this
# test; SIGCONT after): a connection to it is accepted by the kernel and
# never answered, the way a laptop on a dead VPN behaves.  Proves:
#  - with the three clients hung, `status --health` answers in < 2 s (it
#    used to try each client for connect_timeout: 30 s), first still green
#    (nothing failed yet), then, once the coordinator's runs have failed,
#    red naming a client;
#  - plain `status` and `status --json`, which count pending changes on the
#    sources, answer in < 20 s with the three clients hung (3 s per hung
#    node, once: they used to take connect_timeout per sync), the hung
#    clients' counts unknown (null);
#  - the clients back: green again by itself, still answering in < 2 s.
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
for n in a b c; do
	repl_add_node "$n" clients "archive_$n"
done
repl_config 'sync_interval = 2;
statement_timeout = 2;
retry = { min = 1; max = 2; };
circuit = { failures = 100; reset = 2; };'
for n in a b c; do
	run_repctl add sync "${n}h" relgroup=h dbs="$n:source,h:target"
	is "$RC" 0 "add sync ${n}h"
done

FROZEN=''
freeze() {
	local pm p kids
	pm=$(pg_pid "$1")
	kill -STOP "$pm"
	kids=$(pgrep -P "$pm" || true)
	FROZEN="$pm $kids"
	for p in $kids; do kill -STOP "$p" 2>/dev/null || true; done
	note "cluster $1 hung (pids ${FROZEN//$'\n'/ })"
}
thaw() {
	local p
	for p in $(tr ' ' '\n' <<<"$FROZEN" | tac); do kill -CONT "$p" 2>/dev/null || true; done
	FROZEN=''
}
cleanup_push thaw

# health: status --health, timed; sets RC OUT HEALTH_MS
health() {
	local t0=${EPOCHREALTIME/[.,]/}
	run_repctl status --health
	HEALTH_MS=$(((${EPOCHREALTIME/[.,]/} - t0) / 1000))
	note "health in ${HEALTH_MS} ms: $OUT"
}
health_rc() {
	local want=$1 rc=0
	"$REPCTL" status --health >/dev/null 2>&1 || rc=$?
	[[ $rc == "$want" ]]
}

repl_start
ok wait_until 40 health_rc 0
health
is "$RC" 0 "all up: green"
like "$OUT" '^green: 3 syncs healthy' "all up: the line"

# ---- the three clients hung -----------------------------------------------------------------
freeze clients
health
ok test "$HEALTH_MS" -lt 2000
like "$OUT" '^(green|red): ' "clients hung, nothing failed yet: $OUT"
is "$(printf '%s\n' "$OUT" | wc -l)" 1 "one line"

# plain status counts pending changes on every source: a hung client costs
# it at most 3 s, once (it used to be connect_timeout per sync and more)
t0=${EPOCHREALTIME/[.,]/}
run_repctl status
STATUS_MS=$(((${EPOCHREALTIME/[.,]/} - t0) / 1000))
note "status in ${STATUS_MS} ms"
ok test "$STATUS_MS" -lt 20000
like "$OUT" "ah" "status still lists the syncs"
t0=${EPOCHREALTIME/[.,]/}
run_repctl status --json
STATUS_MS=$(((${EPOCHREALTIME/[.,]/} - t0) / 1000))
ok test "$STATUS_MS" -lt 20000
like "$OUT" '"pending": null' "status --json: the hung clients' pending counts are unknown (null)"

ok wait_until 40 health_rc 2
# the three runs hang and fail each on its own clock: wait for the last
all_red() {
	local out
	out=$("$REPCTL" status --health 2>/dev/null) || true
	[[ $out == *"(and 2 more red)" ]]
}
ok wait_until 45 all_red
health
ok test "$HEALTH_MS" -lt 2000
is "$RC" 2 "the coordinator's runs failed: red"
like "$OUT" "^red: sync [abc]h: .*'[abc]'" "the reason names a hung client"
like "$OUT" '\(and 2 more red\)$' "the other two syncs are red too"
health
ok test "$HEALTH_MS" -lt 2000

# ---- the clients back -----------------------------------------------------------------------
thaw
ok wait_until 60 health_rc 0
health
is "$RC" 0 "clients back: green again by itself"
ok test "$HEALTH_MS" -lt 2000
run_repctl stop
is "$RC" 0 "repctl stop"
repl_no_daemon_san

done_testing
