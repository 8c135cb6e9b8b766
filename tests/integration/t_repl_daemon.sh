#!/usr/bin/env bash
# tests/integration/t_repl_daemon.sh - the coordinator (`repctl start`) on a
# star through a hub: a <-> b and a <-> c (syncs ab, ba, ac, ca), with the
# default configuration (sync_interval 60 s, so anything faster is NOTIFY).
#
# Proves:
#  - event-driven: a change on a appears on b and c within a few seconds
#    without any kick; a change on b reaches c through the hub a;
#  - `repctl status` / `status --json` show the coordinator and every sync
#    running, green, with a last good time and no error;
#  - `repctl kick SYNC --wait` prints a good run (exit 0);
#  - `repctl pause`: a paused sync does not run (a kick --wait times out,
#    status says paused) while the others go on; `resume` delivers what was
#    held back;
#  - `repctl start` while running refuses with "already running", exit 1,
#    and the first coordinator keeps running;
#  - the archive guide's exclusion step: `remove table
#    public.schema_migrations --db=N` on every node then `repctl reload`:
#    a change to schema_migrations no longer replicates while a change to
#    songs in the same transaction still does;
#  - `repctl stop` waits until the coordinator and its workers have exited,
#    removes the pid file, and status says "not running";
#  - the daemon wrote no sanitizer report (for a `make SAN=1` build).
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
for e in ab ba ac ca; do
	run_repctl add sync "$e" relgroup=h dbs="${e:0:1}:source,${e:1:1}:target" conflict_strategy=bucardo_latest
	is "$RC" 0 "add sync $e"
done

# has NODE TABLE WHERE : a row matching WHERE exists (for wait_until)
has() { [[ $(repl_val "$1" "SELECT count(*) FROM $2 WHERE $3") -ge 1 ]]; }


# ms since $1 (EPOCHREALTIME)
since_ms() {
	local now=${EPOCHREALTIME/[.,]/} t0=${1/[.,]/}
	echo $(((10#$now - 10#$t0) / 1000))
}

repl_start
pidfile=$REPCTL_STATE_DIR/repctl.pid
ok test -s "$pidfile"
cpid=$(<"$pidfile")
ok pid_running "$cpid"
all_workers() { [[ $(pgrep -P "$cpid" | wc -l) -eq 5 ]]; } # 4 syncs + the prober
ok wait_until 10 all_workers
note "coordinator pid $cpid, workers: $(pgrep -P "$cpid" | tr '\n' ' ')"

# ---- event-driven ---------------------------------------------------------------------------
# let the start-up runs settle: every sync has a good run
all_good() { [[ $(repl_status_json "sum(1 for s in d['syncs'] if s['last_good'])") == 4 ]]; }
ok wait_until 20 all_good

t0=$EPOCHREALTIME
repl_sql a "INSERT INTO songs (id, title) VALUES (1, 'from a')"
ok wait_until 5 has b songs "id = 1"
note "a -> b in $(since_ms "$t0") ms"
ok wait_until 5 has c songs "id = 1"
note "a -> c in $(since_ms "$t0") ms"

t0=$EPOCHREALTIME
repl_sql b "INSERT INTO songs (id, title) VALUES (2, 'from b')"
ok wait_until 8 has c songs "id = 2"
note "b -> a -> c in $(since_ms "$t0") ms"
ok has a songs "id = 2"

t0=$EPOCHREALTIME
repl_sql c "UPDATE songs SET title = 'c was here', updated_at = now() WHERE id = 1"
ok wait_until 8 has b songs "id = 1 AND title = 'c was here'"
note "update c -> a -> b in $(since_ms "$t0") ms"

# ---- status ----------------------------------------------------------------------------------
run_repctl status
is "$RC" 0 "repctl status"
like "$OUT" "^coordinator: running \(pid $cpid on " "status: coordinator running with its pid"
for e in ab ba ac ca; do
	like "$OUT" "^$e +running +[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8}" "status: $e running with a last good time"
done
is "$(repl_status_json "sorted((s['name'], s['state'], s['health']) for s in d['syncs'])")" \
	"[('ab', 'running', 'green'), ('ac', 'running', 'green'), ('ba', 'running', 'green'), ('ca', 'running', 'green')]" \
	"status --json: all running and green"
is "$(repl_status_json "d['coordinator']['running'], d['coordinator']['pid']")" "(True, $cpid)" \
	"status --json: the coordinator and its pid"

# ---- kick --wait ------------------------------------------------------------------------------
repl_sql a "INSERT INTO songs (id, title) VALUES (3, 'kicked')"
run_repctl kick ab --wait --timeout=20
is "$RC" 0 "kick ab --wait exits 0"
like "$OUT" "^sync 'ab': good in [0-9.]+s, I/U/D [0-9]+/[0-9]+/[0-9]+, [0-9]+ conflict" "kick --wait prints a good run"
ok has b songs "id = 3"

# ---- pause / resume ---------------------------------------------------------------------------
run_repctl pause ab
is "$RC" 0 "pause ab"
is "$(repl_status_json "[s['state'] for s in d['syncs'] if s['name'] == 'ab'][0]")" paused "status: ab paused"
repl_sql a "INSERT INTO songs (id, title) VALUES (4, 'held back')"
ok wait_until 8 has c songs "id = 4"
run_repctl kick ab --wait --timeout=3
ok test "$RC" -ne 0
like "$ERR" "did not finish a run" "kick of a paused sync: no run"
fails has b songs "id = 4"
run_repctl resume ab
is "$RC" 0 "resume ab"
ok wait_until 8 has b songs "id = 4"
is "$(repl_status_json "[s['state'] for s in d['syncs'] if s['name'] == 'ab'][0]")" running "status: ab running again"

# ---- start twice ---------------------------------------------------------------------------
run_repctl start
ok test "$RC" -ne 0
like "$ERR" "already running" "a second start refuses: already running"
is "$(<"$pidfile")" "$cpid" "the pid file still names the first coordinator"
ok pid_running "$cpid"

# ---- the archive guide's exclusion step ---------------------------------------------------
repl_sql a "INSERT INTO schema_migrations VALUES ('20240101000000')"
ok wait_until 8 has b schema_migrations "version = '20240101000000'"
for n in a b c; do
	run_repctl remove table public.schema_migrations --db=$n
	is "$RC" 0 "remove table public.schema_migrations --db=$n"
done
run_repctl reload
is "$RC" 0 "repctl reload"
# one transaction: if schema_migrations still replicated, it would arrive with songs
repl_sql a "BEGIN; INSERT INTO schema_migrations VALUES ('20240202000000');
            INSERT INTO songs (id, title) VALUES (5, 'after reload'); COMMIT;"
ok wait_until 10 has b songs "id = 5"
ok wait_until 10 has c songs "id = 5"
fails has b schema_migrations "version = '20240202000000'"
fails has c schema_migrations "version = '20240202000000'"
repl_sql b "UPDATE songs SET title = 'b after reload', updated_at = now() WHERE id = 5; INSERT INTO schema_migrations VALUES ('20240303000000')"
ok wait_until 10 has c songs "id = 5 AND title = 'b after reload'"
fails has a schema_migrations "version = '20240303000000'"
is "$(repl_status_json "sorted((s['name'], s['health']) for s in d['syncs'])")" \
	"[('ab', 'green'), ('ac', 'green'), ('ba', 'green'), ('ca', 'green')]" "all green after the reload"

# ---- stop ---------------------------------------------------------------------------------------
workers=$(pgrep -P "$cpid" | tr '\n' ' ' || true)
note "workers before stop: $workers"
run_repctl stop
is "$RC" 0 "repctl stop"
like "$OUT" "stopped" "stop says stopped"
fails pid_running "$cpid"
for w in $workers; do
	fails pid_running "$w"
done
fails test -e "$pidfile"
run_repctl status
like "$OUT" "^coordinator: not running" "status: not running"
ok grep -q "coordinator stopped" "$REPCTL_STATE_DIR/repctl.log"
run_repctl stop
is "$RC" 0 "stop when not running is fine"
like "$OUT" "not running" "... and says so"
repl_no_daemon_san

done_testing
