#!/usr/bin/env bash
# tests/integration/t_coord_catchup.sh - issue 12 item 4: a client whose
# PostgreSQL was killed during writes and restarted later is caught up by the
# running coordinator within 30 s of its restart, with no command.  Star
# a <-> b, a <-> c (syncs ab, ba, ac, ca), default configuration (circuit
# breaker: 5 failures open a node's circuit).
#
# Proves:
#  - while writers run on a, b and c, c's server is stopped with an
#    immediate shutdown (no checkpoint, as a crash); a and b go on writing
#    for 40 s, long enough for c's circuit to open (node_state.failures >= 5)
#    and status --health is not green meanwhile;
#  - after c's server restarts, with no repctl command at all: within 30 s
#    every row a and b wrote during the outage (and the last version of the
#    rows they all update) is on c, and every table is identical on a, b and
#    c; the rows a's and b's writers left are all there exactly once on every
#    node, and status --health is green again within a few seconds more.
#    (The harness runs PostgreSQL with synchronous_commit = off, so c may lose
#    its last commits in the crash, including batches repctl applied to it
#    just before: those must come back too.  COORD_CATCHUP_SYNC_COMMIT=on
#    runs c with synchronous_commit = on, to look at the catch-up alone.)
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

OUTAGE=${COORD_CATCHUP_OUTAGE:-40}

repl_setup a b c
for e in ab ba ac ca; do
	run_repctl add sync "$e" relgroup=h dbs="${e:0:1}:source,${e:1:1}:target" conflict_strategy=bucardo_latest
	is "$RC" 0 "add sync $e"
done
repl_sql a "INSERT INTO songs (id, title) SELECT g, 'shared ' || g FROM generate_series(1, 5) g"

same_abc() {
	local sa
	sa=$(repl_sums a)
	[[ $sa == "$(repl_sums b)" && $sa == "$(repl_sums c)" ]]
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
# the rows of songs that differ between $1 and $2 (at most 20 lines)
songs_diff() {
	diff <(repl_val "$1" "SELECT t::text FROM songs t ORDER BY id") \
		<(repl_val "$2" "SELECT t::text FROM songs t ORDER BY id") | grep '^[<>]' | head -n 20 |
		sed "s/^</$1:/; s/^>/$2:/" || true
}
c_state() {
	pg_psql meta postgres -c "SELECT coalesce((SELECT failures || ' failure(s), circuit open until ' ||
	                                 coalesce(circuit_open_until::text, '-') FROM repctl.node_state
	                           WHERE node = 'c'), 'no state')"
}
c_failures() { pg_psql meta postgres -c "SELECT coalesce((SELECT failures FROM repctl.node_state WHERE node = 'c'), 0)"; }
circuit_opened() { (($(c_failures) >= 5)); }
# crash_c : immediate stop of c's server (its port is kept: pg_start c reuses it)
crash_c() {
	local pid dd
	pid=$(pg_pid c)
	dd=$(pg_datadir c)
	_pg_as_user "$PG_BIN/pg_ctl" -D "$dd" -m immediate -w -t 60 stop >/dev/null
	if ! _pg_wait_pid_gone "$pid" 100; then
		echo "crash_c: postmaster $pid of c did not exit" >&2
		return 1
	fi
	_PG_PID[c]=''
}

# the rows of a's and b's ranges written after the crash, and the shared rows 1..5
# (updated by a and b after the crash): on c as on their writer's node
outage_rows() {
	repl_val "$1" "SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY id), '')) FROM songs t
	                WHERE id BETWEEN 1 AND 5
	                   OR id > $max_a AND id < ${REPL_WBASE[a]} + 1000000
	                   OR id > $max_b AND id < ${REPL_WBASE[b]} + 1000000"
}
outage_rows_on_c() {
	local want got
	want=$(outage_rows a)
	got=$(outage_rows c)
	[[ ${1:-} == -v ]] && echo "outage rows: a $want, b $(outage_rows b), c $got"
	[[ $want == "$got" && $want == "$(outage_rows b)" ]]
}

if [[ ${COORD_CATCHUP_SYNC_COMMIT:-off} == on ]]; then
	# isolates the catch-up from transactions c loses in the crash (see the report)
	pg_sql c postgres "ALTER SYSTEM SET synchronous_commit = on"
	pg_sql c postgres "SELECT pg_reload_conf()" >/dev/null
	note "c runs with synchronous_commit = on"
fi

repl_start
ok test -s "$REPCTL_STATE_DIR/repctl.pid"
ok wait_until 30 same_abc
if wait_until 30 green; then
	pass "green at the start"
else
	fail "green at the start" "$HEALTH"
fi

repl_writers_start a b c
sleep 3
note "immediate shutdown of c's server during the writes"
crash_c
t_crash=$SECONDS
max_a=$(repl_val a "SELECT coalesce(max(id), ${REPL_WBASE[a]}) FROM songs WHERE id > ${REPL_WBASE[a]} AND id < ${REPL_WBASE[a]} + 1000000")
max_b=$(repl_val b "SELECT coalesce(max(id), ${REPL_WBASE[b]}) FROM songs WHERE id > ${REPL_WBASE[b]} AND id < ${REPL_WBASE[b]} + 1000000")
repl_writers_stop c
note "a and b go on writing for ${OUTAGE} s"
if wait_until "$OUTAGE" circuit_opened; then
	pass "c's circuit opened after $((SECONDS - t_crash)) s ($(c_state))"
else
	fail "c's circuit opened (5 failures) during the outage" "$(c_state)"
fi
while ((SECONDS - t_crash < OUTAGE)); do
	sleep 1
done
if not_green; then
	pass "c down: status --health is not green ($HEALTH)"
else
	fail "c down: status --health is not green" "$HEALTH"
fi
repl_writers_stop a b
note "node c before its restart: $(c_state)"

pg_start c
t_up=$SECONDS
note "c's server is back"
if wait_until 30 outage_rows_on_c; then
	pass "every row a and b wrote during the outage is on c $((SECONDS - t_up)) s after its restart, with no command"
else
	fail "every row a and b wrote during the outage is on c within 30 s of its restart, with no command" \
		"node c: $(c_state); $(outage_rows_on_c -v)"
fi
left=$((t_up + 30 - SECONDS))
((left >= 1)) || left=1
if wait_until "$left" same_abc; then
	pass "a, b and c identical $((SECONDS - t_up)) s after c's restart, with no command"
else
	fail "a, b and c identical within 30 s of c's restart, with no command" \
		"node c: $(c_state); songs rows that differ:"$'\n'"$(songs_diff a c)"$'\n'"$(songs_diff a b)"
	note "(waiting longer, to tell slow from never)"
	if wait_until 60 same_abc; then
		note "identical $((SECONDS - t_up)) s after the restart"
	else
		note "still different $((SECONDS - t_up)) s after the restart:"
		songs_diff a c | sed 's/^/#   /'
	fi
fi
if wait_until 10 green; then
	pass "green again $((SECONDS - t_up)) s after c's restart"
else
	fail "green again once c is caught up" "$HEALTH"
fi
repl_same "after c's outage" a b c
for n in a b; do
	for m in a b c; do
		is "$(repl_val "$m" "SELECT count(*) FROM songs WHERE id > ${REPL_WBASE[$n]} AND id < ${REPL_WBASE[$n]} + 1000000")" \
			"${REPL_WROTE[$n]}" "$m holds exactly the rows the writer on $n left"
	done
done
note "runs: $(pg_psql meta postgres -c "SELECT count(*) || ' in all, ' || count(*) FILTER (WHERE NOT ok) || ' failed' FROM repctl.run")"

run_repctl stop
is "$RC" 0 "repctl stop"
nothing_left() { [[ -z $(repl_daemon_pids) ]]; }
ok wait_until 10 nothing_left
repl_no_daemon_san

done_testing
