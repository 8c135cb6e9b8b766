#!/usr/bin/env bash
# tests/integration/t_coord_restart.sh - issue 12 item 2: the coordinator
# restarts any child process (sync worker, runner, watcher...) that goes
# away, and status is never green while the syncs' runs are missing.  Pair
# a <-> b (syncs ab, ba), both with interval=2: a healthy coordinator runs
# each at least every 2 s, and a sync with no run started for 2*2+10 = 14 s
# (and none in progress) is stalled.
#
# Proves (whatever the coordinator's children are: one worker per sync, or
# runners shared by the syncs):
#  - a child stopped with SIGTERM is replaced within 5 s (the coordinator is
#    back to its number of children, the old process is gone) and both syncs
#    still replicate (a -> b and b -> a); the same when every child gets
#    SIGTERM at once, and when every child is SIGKILLed at once;
#  - the coordinator frozen (SIGSTOP, so it cannot restart anything) and
#    every child SIGKILLed: `status --health` turns non-green (exit status
#    non-zero, naming a sync), status --json shows ab not green; once the
#    coordinator continues (SIGCONT) its children are back, the changes made
#    meanwhile arrive and status is green again;
#  - every child frozen with SIGSTOP between two runs while a change waits
#    on a: `status --health` turns non-green (stalled) naming ab; after
#    SIGCONT the change arrives on b and status is green again;
#  - `repctl stop` leaves no process of this test's repctl.
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
for e in ab ba; do
	run_repctl add sync "$e" relgroup=h dbs="${e:0:1}:source,${e:1:1}:target" conflict_strategy=bucardo_latest
	is "$RC" 0 "add sync $e"
	run_repctl update sync "$e" interval=2
	is "$RC" 0 "update sync $e interval=2"
done

has() { [[ $(repl_val "$1" "SELECT count(*) FROM $2 WHERE $3") -ge 1 ]]; }
# the live children of the coordinator (not zombies: an exited child not reaped yet)
kids() {
	local p
	for p in $(pgrep -P "$cpid" || true); do
		if pid_running "$p"; then
			printf '%s ' "$p"
		fi
	done
}
nkids() { wc -w <<<"$(kids)"; }
back() { (($(nkids) >= kids0)); }
all_gone() {
	local p
	for p in "$@"; do
		if pid_running "$p"; then
			return 1
		fi
	done
}
health() {
	HEALTH_RC=0
	HEALTH=$("$REPCTL" status --health 2>&1) || HEALTH_RC=$?
}
green() { health && [[ $HEALTH_RC == 0 ]]; }
not_green() {
	health
	[[ $HEALTH_RC != 0 ]]
}
ab_not_green() { [[ $(repl_status_json "[s['health'] for s in d['syncs'] if s['name'] == 'ab'][0]") != green ]]; }
# runs in progress: an open run row, or a run lock held (either shows a run under way)
busy() {
	pg_psql meta postgres -c "SELECT (SELECT count(*) FROM repctl.run WHERE ended_at IS NULL)
	                                + (SELECT count(*) FROM pg_catalog.pg_locks WHERE locktype = 'advisory'
	                                      AND classid = 1919968117 AND granted)"
}
id=100
# a row inserted on $1 arrives on $2 within 10 s
flows() {
	id=$((id + 1))
	repl_sql "$1" "INSERT INTO songs (id, title) VALUES ($id, '$1 to $2')"
	if wait_until 10 has "$2" songs "id = $id"; then
		pass "$3: $1 -> $2 replicates"
	else
		fail "$3: $1 -> $2 replicates"
	fi
}

repl_start
cpid=$(<"$REPCTL_STATE_DIR/repctl.pid")
some_kids() { (($(nkids) >= 2)); }
ok wait_until 15 some_kids
sleep 1
kids0=$(nkids)
note "coordinator $cpid, $kids0 children: $(kids)"
if wait_until 30 green; then
	pass "status --health green at the start"
else
	fail "status --health green at the start" "$HEALTH"
fi

# ---- SIGTERM one, SIGTERM all, SIGKILL all: replaced -----------------------------------------
for what in TERM:one TERM:all KILL:all; do
	sig=${what%:*}
	read -r -a victims <<<"$(kids)"
	[[ ${what#*:} == one ]] && victims=("${victims[0]}")
	note "SIG$sig to ${victims[*]} (children of $cpid: $(kids))"
	kill -s "$sig" "${victims[@]}"
	ok wait_until 10 all_gone "${victims[@]}"
	if wait_until 5 back; then
		pass "SIG$sig to ${what#*:} child(ren): replaced within 5 s (children now: $(kids))"
	else
		fail "SIG$sig to ${what#*:} child(ren): replaced within 5 s" "children of $cpid: $(kids)"
		# go on with the rest of the test: a reload starts every child again
		run_repctl reload
		wait_until 10 back || true
	fi
	flows a b "after SIG$sig to ${what#*:}"
	flows b a "after SIG$sig to ${what#*:}"
done

# ---- no child at all: not green -----------------------------------------------------------
ok wait_until 20 green
read -r -a victims <<<"$(kids)"
note "freeze the coordinator $cpid, SIGKILL all its children: ${victims[*]}"
kill -STOP "$cpid"
cleanup_push "kill -CONT $cpid 2>/dev/null || true"
kill -KILL "${victims[@]}"
id=$((id + 1))
repl_sql a "INSERT INTO songs (id, title) VALUES ($id, 'while nothing runs')"
t0=$SECONDS
if wait_until 35 not_green; then
	pass "no child process: status --health not green after $((SECONDS - t0)) s ($HEALTH)"
	like "$HEALTH" "sync (ab|ba)" "... and names a sync"
	ok ab_not_green
else
	fail "no child process: status --health not green within 35 s" "$HEALTH"
fi
kill -CONT "$cpid"
if wait_until 10 back; then
	pass "the coordinator continues: its children are back ($(kids))"
else
	fail "the coordinator continues: its children are back" "children: $(kids)"
	run_repctl reload
	wait_until 10 back || true
fi
ok wait_until 15 has b songs "id = $id"
if wait_until 25 green; then
	pass "green again once the syncs run"
else
	fail "green again once the syncs run" "$HEALTH"
fi

# ---- every child frozen between runs: stalled, not green ---------------------------------
frozen=()
for try in $(seq 1 40); do
	read -r -a victims <<<"$(kids)"
	kill -STOP "${victims[@]}"
	if [[ $(busy) == 0 ]]; then
		frozen=("${victims[@]}")
		break
	fi
	kill -CONT "${victims[@]}"
	sleep 0.$((RANDOM % 5 + 1))
done
if ((${#frozen[@]} > 0)); then
	pass "froze every child (${frozen[*]}) between runs (try $try)"
	cleanup_push "kill -CONT ${frozen[*]} 2>/dev/null || true"
else
	fail "froze every child between runs"
fi
id=$((id + 1))
repl_sql a "INSERT INTO songs (id, title) VALUES ($id, 'waits for the frozen children')"
t0=$SECONDS
if wait_until 35 not_green; then
	pass "children frozen: status --health not green after $((SECONDS - t0)) s ($HEALTH)"
	like "$HEALTH" "sync (ab|ba)" "... and names a sync"
	ok ab_not_green
else
	fail "children frozen: status --health not green within 35 s" "$HEALTH"
fi
fails has b songs "id = $id"
if ((${#frozen[@]} > 0)); then
	kill -CONT "${frozen[@]}"
fi
ok wait_until 15 has b songs "id = $id"
if wait_until 25 green; then
	pass "green again once the children run"
else
	fail "green again once the children run" "$HEALTH"
fi

# ---- stop ---------------------------------------------------------------------------------------------
run_repctl stop
is "$RC" 0 "repctl stop"
nothing_left() { [[ -z $(repl_daemon_pids) ]]; }
ok wait_until 10 nothing_left
repl_same "a = b at the end" a b
repl_no_daemon_san

done_testing
