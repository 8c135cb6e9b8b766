#!/usr/bin/env bash
# tests/integration/t_fleet_offline.sh - an offline client (issue 7, item 4).
#
# Proves, with the coordinator running a two-way pair:
#  - while node b is down, 50 rounds of updates of the same 100 rows on a
#    (5000 row changes) leave a's shadow table of that table at 100 rows,
#    one per changed key (compacted by construction), not 5000; the sync
#    towards b fails meanwhile (a run names b as unreachable);
#  - `repctl status` then shows b's last contact (from before it went down)
#    and its failures, and 100 keys pending for the sync a -> b; the
#    coordinator keeps running;
#  - when b comes back, without restarting the coordinator, b catches up by
#    itself within a bounded time (checksums equal, the last round of
#    values), pending drops to 0, b's failures reset; the coordinator is
#    the same process throughout.
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
repl_config '
sync_interval = 2;
connect_timeout = 2;
retry = { min = 1; max = 2; };
circuit = { failures = 3; reset = 3; };'
run_repctl add sync ab herd=h dbs=a:source,b:target
is "$RC" 0 "add sync ab"
run_repctl add sync ba herd=h dbs=b:source,a:target
is "$RC" 0 "add sync ba"
repl_sql a "INSERT INTO songs (id, title, plays) SELECT g, 'song ' || g, 0 FROM generate_series(1, 100) g"
repl_start
same() { [[ $(repl_sums a) == "$(repl_sums b)" ]]; }
ok wait_until 30 same
pid=$(repl_status_json "d['coordinator']['pid']")
note "coordinator pid $pid"

shadow_rows() { # NODE TABLE: rows in the table's shadow table
	repl_psql "$1" <<<"SELECT format('SELECT count(*) FROM repctl.%I', shadow) FROM repctl.captured WHERE table_name = '$2' \\gexec"
}
is "$(shadow_rows a songs)" 100 "a's shadow of songs: 100 keys"

# ---- b goes offline --------------------------------------------------------------------------
contact_before=$(repl_status_json "[x['last_contact'] for x in d['nodes'] if x['node'] == 'b'][0]")
note "b's last contact before it went down: $contact_before"
pg_stop b
for ((round = 1; round <= 50; round++)); do
	repl_sql a "UPDATE songs SET plays = plays + 1, title = 'round $round', updated_at = clock_timestamp()"
done
is "$(repl_val a "SELECT sum(plays) FROM songs")" 5000 "5000 row changes made on a"
is "$(shadow_rows a songs)" 100 "a's shadow of songs still holds 100 rows (one per key), not 5000"
run_repctl run ab
is "$RC" 1 "a run of ab fails while b is down"
like "$ERR" "node 'b'|a -> b" "... naming b"

failing() { [[ $(repl_status_json "[x['failures'] for x in d['nodes'] if x['node'] == 'b'][0]") -gt 0 ]]; }
ok wait_until 30 failing
run_repctl status
is "$RC" 0 "status while b is down"
printf '%s\n' "$OUT" | sed 's/^/#   /'
like "$OUT" "^b +$contact_before " "status shows b's last contact (before the outage)"
is "$(repl_status_json "[x['last_contact'] for x in d['nodes'] if x['node'] == 'b'][0]")" "$contact_before" \
	"status --json: b's last_contact"
is "$(repl_status_json "[s['pending'] for s in d['syncs'] if s['name'] == 'ab'][0]")" 100 \
	"status --json: 100 keys pending for a -> b"
like "$OUT" "^ab .* 100 " "status: ab shows 100 pending"
is "$(repl_status_json "d['coordinator']['running']")" True "the coordinator is still running"

# ---- b comes back ------------------------------------------------------------------------------
pg_start b
t0=$SECONDS
ok wait_until 60 same
note "b caught up $((SECONDS - t0)) s after it came back"
is "$(repl_val b "SELECT count(*) FROM songs WHERE title = 'round 50' AND plays = 50")" 100 \
	"b holds the last round of every row"
caught() { [[ $(repl_status_json "[s['pending'] for s in d['syncs'] if s['name'] == 'ab'][0]") == 0 ]]; }
ok wait_until 30 caught
healthy() { [[ $(repl_status_json "[x['failures'] for x in d['nodes'] if x['node'] == 'b'][0]") == 0 ]]; }
ok wait_until 30 healthy
is "$(repl_status_json "d['coordinator']['pid']")" "$pid" "the same coordinator process throughout (no restart)"
is "$(shadow_rows b songs)" 100 "b's shadow of songs: 100 rows"
repl_no_daemon_san

done_testing
