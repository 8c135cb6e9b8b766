#!/usr/bin/env bash
# tests/integration/t_coord_wake.sh - what wakes a sync in the coordinator
# (issue 12, fleet scale): a star hub h with clients a and b, the guide's
# pairs through the hub (syncs ha, ah, hb, bh), latest wins, and the default
# sync_interval (60 s), so anything faster than a minute is a wake-up.
#
# Proves:
#  - a change on a reaches b through the hub within seconds;
#  - an apply does not wake the sync that would only carry it back to where
#    it came from: after a change on a reaches h and b, the syncs back to the
#    hub (ah after its own run aside, bh) have no run started by the echo;
#  - a sync added while the coordinator runs is scheduled and run without
#    `repctl reload` (add sync tells the coordinator);
#  - an apply notifies with its source (payload from:SOURCE), and a conflict
#    decided on the target is a new version of the target, announced without
#    a source (payload empty), which wakes every sync of the target (the
#    loser learns the decision at once, not at the next interval).
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

repl_setup h a b
for e in ha ah hb bh; do
	run_repctl add sync "$e" relgroup=h dbs="${e:0:1}:source,${e:1:1}:target" conflict_strategy=bucardo_latest
	is "$RC" 0 "add sync $e"
done
title() { repl_val "$1" "SELECT coalesce((SELECT title FROM songs WHERE id = $2), '-')"; }
title_is() { [[ $(title "$1" "$2") == "$3" ]]; }
runs_of() { pg_sql meta repctl "SELECT count(*) FROM repctl.run WHERE sync = '$1'" 2>/dev/null ||
	"$REPCTL" list syncs >/dev/null; }
meta_val() { PGCONNECT_TIMEOUT=5 "$PG_BIN/psql" -X -A -t -q -d "$REPCTL_META" -c "$1"; }

repl_start
all_good() { [[ $(meta_val "SELECT count(DISTINCT sync) FROM repctl.run WHERE ok") == 4 ]]; }
ok wait_until 30 all_good
sleep 2 # the start-up runs and their echoes settle

# ---- fan-out through the hub, no echo runs ---------------------------------------------------
before_bh=$(meta_val "SELECT count(*) FROM repctl.run WHERE sync = 'bh'")
t0=$EPOCHREALTIME
repl_sql a "INSERT INTO songs (id, title) VALUES (1, 'from a')"
ok wait_until 10 title_is b 1 'from a'
note "a -> h -> b in $(echo "$EPOCHREALTIME - $t0" | awk '{print $1 - $3}') s" 2>/dev/null || true
sleep 3
after_bh=$(meta_val "SELECT count(*) FROM repctl.run WHERE sync = 'bh'")
is "$after_bh" "$before_bh" "the apply on b (from h) woke no run of bh: it would carry only echoes"

# ---- a sync added while the coordinator runs is scheduled without `repctl reload` -------------
run_repctl add sync ab relgroup=h dbs=a:source,b:target conflict_strategy=bucardo_latest
is "$RC" 0 "add sync ab with the coordinator running"
like "$OUT" "reloading to take it up" "add sync says the coordinator reloads"
ab_scheduled() { [[ $(repl_status_json "[s['state'] for s in d['syncs'] if s['name'] == 'ab'][0]") == running ]]; }
ok wait_until 15 ab_scheduled
ok wait_until 15 eval "[[ \$(meta_val \"SELECT count(*) FROM repctl.run WHERE sync = 'ab' AND ok\") -ge 1 ]]"
run_repctl remove sync ab
is "$RC" 0 "remove sync ab"

# ---- a conflict decided on the hub wakes the hub's syncs ---------------------------------------
# The apply says where its changes came from ('from:a'), and a conflict it decided is a new
# version of the hub, announced without a source (''), which wakes ha too.  Checked with a
# listener on h, with the coordinator stopped and the runs made by hand.
run_repctl stop
is "$RC" 0 "stop"
repl_sql a "UPDATE songs SET title = 'a older', updated_at = now() - interval '1 hour' WHERE id = 1"
repl_sql h "UPDATE songs SET title = 'h newer', updated_at = now() WHERE id = 1"
listen() { # NODE FILE: LISTEN repctl for 4 s, notifications into FILE
	PGCONNECT_TIMEOUT=5 "$PG_BIN/psql" -X -d "$(pg_conninfo "$1" archive)" \
		-c "LISTEN repctl" -c "SELECT pg_sleep(4)" -c "SELECT 1" >"$2" 2>&1
}
listen h "$TEST_TMP/h.notify" &
lpid=$!
sleep 1
repl_run ah
is "$RUN_RC" 0 "run ah"
is "$RUN_C" 1 "one conflict, decided on h"
wait "$lpid" || true
note "$(cat "$TEST_TMP/h.notify")"
like "$(cat "$TEST_TMP/h.notify")" 'notification "repctl" with payload "from:a"' "the apply on h says it came from a"
like "$(cat "$TEST_TMP/h.notify")" 'notification "repctl" received' "the decided conflict wakes every sync of h"
# without the listener's help: the unchanged apply of an echo sends nothing
listen a "$TEST_TMP/a.notify" &
lpid=$!
sleep 1
repl_run ha
is "$RUN_RC" 0 "run ha"
wait "$lpid" || true
like "$(cat "$TEST_TMP/a.notify")" 'payload "from:h"' "a got the hub's version (an apply from h)"
is "$(title a 1)" 'h newer' "a has the hub's newer version"
repl_run ha
repl_run ah
repl_run hb
repl_same "a, h and b agree" h a b
repl_no_daemon_san
done_testing
