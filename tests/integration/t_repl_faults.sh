#!/usr/bin/env bash
# tests/integration/t_repl_faults.sh - a target that is down does not stop
# the others, and catches up by itself when it returns.
#
# Three nodes, a star through the hub a (syncs ab, ba, ac, ca) under the
# daemon, with a short breaker and backoff from a configuration file:
#   sync_interval = 2; circuit = { failures = 2; reset = 2; };
#   retry = { min = 1; max = 2; };
# Proves:
#  - first in the foreground (repctl run): with c down, a failed edge
#    counts the failure on c whether c is its source or its target, never
#    on the healthy a; an edge with nothing to send is good but does not
#    clear c's failures (it never reached c); two failures open c's circuit;
#    ab still runs; c back: its failures reset and it gets what it missed;
#  - node c's server stopped: changes on a still reach b promptly (several
#    times, each within a few seconds), and changes on b reach a;
#  - status shows ac and ca bad (red) with c's error, node c with failures
#    and its circuit, while ab / ba stay green and the healthy hub a is never
#    blamed (its failures stay 0, its circuit closed);
#  - c's server started again: c catches up with everything it missed
#    (from a, and from b through a) without restarting the coordinator (same
#    pid), and a change made on c after its return flows to b;
#    status is green again, c's failures 0 and circuit closed.
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

repl_setup a b c
repl_config 'sync_interval = 2;
circuit = { failures = 2; reset = 2; };
retry = { min = 1; max = 2; };'
run_repctl config
is "$RC" 0 "the configuration file is valid"
[[ $RC == 0 ]] || diag "$ERR"
for e in ab ba ac ca; do
	run_repctl add sync "$e" relgroup=h dbs="${e:0:1}:source,${e:1:1}:target" conflict_strategy=bucardo_latest
	is "$RC" 0 "add sync $e"
done

has() { [[ $(repl_val "$1" "SELECT count(*) FROM $2 WHERE $3") -ge 1 ]]; }
sync_health() { repl_status_json "[s['health'] for s in d['syncs'] if s['name'] == '$1'][0]"; }
node_field() { repl_status_json "[n['$2'] for n in d['nodes'] if n['node'] == '$1'][0]"; }
same3() { [[ $(repl_sums a) == "$(repl_sums b)" && $(repl_sums a) == "$(repl_sums c)" ]]; }
all_green() {
	[[ $(repl_status_json "sorted(s['health'] for s in d['syncs'])") == "['green', 'green', 'green', 'green']" ]]
}

# Watch the healthy hub: every sample of a's failure count goes to a file.
A_SAMPLES=$TEST_TMP/a_failures
: >"$A_SAMPLES"
sample_a() { pg_sql meta postgres "SELECT coalesce((SELECT failures FROM repctl.node_state WHERE node = 'a'), 0)" >>"$A_SAMPLES" || true; }

# ---- first in the foreground: a failed edge blames the node that failed -----------------
node_failures() { pg_sql meta postgres "SELECT coalesce((SELECT failures FROM repctl.node_state WHERE node = '$1'), 0)"; }
run_ok() { repl_run "$1" >/dev/null; [[ $RUN_RC == 0 ]]; }
for e in ab ba ac ca; do
	repl_run "$e"
	is "$RUN_RC" 0 "run $e with every node up"
done
pg_stop c
repl_run ca
ok test "$RUN_RC" -ne 0
like "$RUN_ERR" "node 'c'" "run ca with c down fails naming c"
is "$(node_failures c)/$(node_failures a)" 1/0 "the failure of source c is counted on c, not on the healthy target a"
repl_run ac
is "$RUN_RC/$RUN_I/$RUN_U/$RUN_D" 0/0/0/0 "run ac with nothing to send is good (c not needed)"
is "$(node_failures c)" 1 "... and does not clear c's failures: it never reached c"
repl_sql a "INSERT INTO songs (id, title) VALUES (90, 'for c')"
repl_run ac
ok test "$RUN_RC" -ne 0
like "$RUN_ERR" "node 'c'" "run ac with c down fails naming c"
is "$(node_failures c)/$(node_failures a)" 2/0 "the failure of target c is counted on c, not on the healthy source a"
like "$(node_field c circuit)" '^open' "two failures open c's circuit"
is "$(node_field a circuit)" closed "a's circuit stays closed"
repl_run ab
is "$RUN_RC/$RUN_I" 0/1 "ab (not involving c) still runs"
pg_start c
ok wait_until 15 run_ok ac
ok wait_until 15 run_ok ca
is "$(node_failures c)" 0 "c's failures reset once it answers again"
is "$(repl_val c 'SELECT count(*) FROM songs WHERE id = 90')" 1 "c got the row held back"

repl_start
cpid=$(<"$REPCTL_STATE_DIR/repctl.pid")
pg_sql a "$REPL_DB" "INSERT INTO songs (id, title) SELECT g, 'start ' || g FROM generate_series(1, 20) g"
ok wait_until 20 same3
ok wait_until 20 all_green

# ---- c goes down ----------------------------------------------------------------------------
pg_stop c
note "node c stopped"
for i in 1 2 3 4 5; do
	repl_sql a "INSERT INTO songs (id, title) VALUES ($((100 + i)), 'while c is down $i')"
	t0=${EPOCHREALTIME/[.,]/}
	b_has() { sample_a; has b songs "id = $((100 + i))"; }
	ok wait_until 6 b_has
	note "a -> b with c down: $(((${EPOCHREALTIME/[.,]/} - t0) / 1000)) ms"
done
repl_sql b "INSERT INTO songs (id, title) VALUES (200, 'from b while c is down')"
a_has() { sample_a; has a songs "id = 200"; }
ok wait_until 6 a_has
pg_sql a "$REPL_DB" "INSERT INTO songs (id, title) SELECT g, 'bulk while c is down' FROM generate_series(1000, 1999) g"
ok wait_until 10 has b songs "id = 1999"

ac_red() { sample_a; [[ $(sync_health ac) == red && $(sync_health ca) == red ]]; }
ok wait_until 15 ac_red
c_counted() { sample_a; [[ $(node_field c failures) -ge 1 ]]; }
ok wait_until 15 c_counted
run_repctl status
note "status with c down:"
printf '%s\n' "$OUT" | sed 's/^/#   /'
like "$OUT" '^ac +.*red' "status: ac red"
like "$OUT" '^ca +.*red' "status: ca red"
like "$OUT" '^ab +.*green' "status: ab still green"
like "$OUT" '^ba +.*green' "status: ba still green"
like "$(node_field c last_error)" "node 'c'" "status: c's last error names it"
like "$(node_field c circuit)" '^(open|closed)' "status: c's circuit shown ($(node_field c circuit))"
like "$(repl_status_json "[s['last_error'] for s in d['syncs'] if s['name'] == 'ac'][0]")" "'c'|-> c" \
	"status: ac's last error names c"
opened() { sample_a; [[ $(node_field c circuit) == open* ]]; }
ok wait_until 10 opened
sample_a
is "$(sort -nu "$A_SAMPLES" | tail -n 1)" 0 "the healthy hub a was never blamed (failures stayed 0; $(wc -l <"$A_SAMPLES") samples)"
is "$(node_field a circuit)" closed "a's circuit is closed"

# ---- c comes back -------------------------------------------------------------------------
pg_start c
note "node c started again"
ok wait_until 30 same3
is "$(repl_val c 'SELECT count(*) FROM songs')" "$(repl_val a 'SELECT count(*) FROM songs')" "c caught up"
ok has c songs "id = 200"
repl_sql c "INSERT INTO songs (id, title) VALUES (300, 'from c after its return')"
ok wait_until 10 has b songs "id = 300"
ok wait_until 20 all_green
is "$(node_field c failures)" 0 "c's failures back to 0"
is "$(node_field c circuit)" closed "c's circuit closed"
is "$(<"$REPCTL_STATE_DIR/repctl.pid")" "$cpid" "the same coordinator (no restart)"
ok pid_running "$cpid"
repl_same "after the outage" a b c
run_repctl stop
is "$RC" 0 "repctl stop"
repl_no_daemon_san

done_testing
