#!/usr/bin/env bash
# tests/integration/t_fleet_clock.sh - clocks (issue 7, item 3).
#
# Proves, with conflict_strategy latest on a two-way pair:
#  - the hazard is real: a row updated on a with updated_at six months ahead
#    (a bad clock or a bad client), and concurrently on b a moment later
#    with a normal updated_at: when the future limit is set as far as it
#    goes (clock.future_limit = 1 year), a's future value wins the conflict,
#    and would go on winning against every concurrent update for six months;
#  - with the default clock.future_limit (300 s) the same race with a value
#    one year ahead is decided by a's change time instead: b's later update
#    wins on both nodes, and the conflict log's rule says the future value
#    was clamped (conflicts and conflicts --json);
#  - a later update on a (sequential, not concurrent) still wins normally;
#  - `repctl status --json` has clock_offset_ms for every node that was
#    contacted, near 0 on one machine, and no clock warning; `status` shows
#    the column; validate does not report a clock problem.
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
run_repctl add sync ab herd=h dbs=a:source,b:target conflict_strategy=latest
is "$RC" 0 "add sync ab"
run_repctl add sync ba herd=h dbs=b:source,a:target conflict_strategy=latest
is "$RC" 0 "add sync ba"
repl_sql a "INSERT INTO songs (id, title) VALUES (1, 'original'), (2, 'original')"
ok repl_converge 5 ab ba
repl_same "start" a b

# race ID INTERVAL: a writes updated_at = now() + INTERVAL, then b a moment
# later with its own now(); neither has seen the other's update.
race() {
	repl_sql a "UPDATE songs SET title = 'from a (future)', updated_at = now() + interval '$2' WHERE id = $1"
	sleep 0.3
	repl_sql b "UPDATE songs SET title = 'from b', updated_at = now() WHERE id = $1"
}

# ---- the hazard: a trusted future value wins ----------------------------------------------------
repl_config 'clock = { future_limit = 31536000; };'
race 1 '6 months'
ok repl_converge 5 ab ba
repl_same "future value trusted" a b
is "$(repl_val b "SELECT title FROM songs WHERE id = 1")" "from a (future)" \
	"with future_limit = 1 year, a's value six months ahead wins over b's later update"
run_repctl conflicts
like "$OUT" '"id": 1' "the conflict on id 1 is listed"
unlike "$(grep '"id": 1' <<<"$OUT")" "clamped" "... and nothing was clamped"

# ---- the default limit clamps it ----------------------------------------------------------------
unset REPCTL_CONFIG
race 2 '1 year'
ok repl_converge 5 ab ba
repl_same "future value clamped" a b
is "$(repl_val a "SELECT title FROM songs WHERE id = 2")" "from b" \
	"with the default future_limit, b's later update wins on a ..."
is "$(repl_val b "SELECT title FROM songs WHERE id = 2")" "from b" "... and on b"
run_repctl conflicts
is "$RC" 0 "repctl conflicts"
printf '%s\n' "$OUT" | sed 's/^/#   /'
line=$(grep '"id": 2' <<<"$OUT" || true)
like "$line" "update/update latest: .*\\(future value clamped\\)" "the conflict's rule says the future value was clamped"
like "$line" " b +update/update" "... and b won"
run_repctl conflicts --json
is "$(json_eval "$OUT" "[c['rule'] for c in d if c.get('pk') == {'id': 2}][0].endswith('(future value clamped)')" 2>/dev/null || true)" True \
	"conflicts --json: the rule mentions the clamp"
[[ $RC == 0 ]] || diag "$ERR"

# ---- a sequential update still wins ---------------------------------------------------------------
repl_sql a "UPDATE songs SET title = 'later on a', updated_at = now() WHERE id = 2"
c0=$(pg_sql meta postgres "SELECT count(*) FROM repctl.conflict")
ok repl_converge 5 ab ba
is "$(repl_val b "SELECT title FROM songs WHERE id = 2")" "later on a" "a sequential update on a wins on b"
is "$(pg_sql meta postgres "SELECT count(*) FROM repctl.conflict")" "$c0" "... without a conflict"

# ---- clock offsets in status ----------------------------------------------------------------------
for n in a b; do
	off=$(repl_status_json "[x['clock_offset_ms'] for x in d['nodes'] if x['node'] == '$n'][0]")
	note "clock offset of $n: $off ms"
	ok python3 -c "import sys; v = float(sys.argv[1]); sys.exit(0 if abs(v) < 200 else 1)" "$off"
	is "$(repl_status_json "[x['warning'] for x in d['nodes'] if x['node'] == '$n'][0]")" None \
		"status --json: no clock warning for $n"
done
run_repctl status
like "$OUT" "clock_offset_ms" "status shows the clock_offset_ms column"
run_repctl validate
unlike "$OUT" "clock is off" "validate reports no clock problem"

done_testing
