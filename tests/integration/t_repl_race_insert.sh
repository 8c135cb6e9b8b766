#!/usr/bin/env bash
# tests/integration/t_repl_race_insert.sh - an apply that races with a
# local writer on the target: the target's write is never lost, the
# strategy decides between the two versions after the local commit, the
# conflict is logged and the version vectors are merged, never replaced.
#
# On a pair of one-way syncs ab (a -> b) and ba (b -> a) with
# conflict_strategy latest, each race is made deterministic: b's writer is
# a psql session fed through a fifo, its transaction is left open, `repctl
# run ab` is started in the background, and b's transaction is committed
# only once repctl's backend on b is seen blocked by it (pg_blocking_pids).
# Proves:
#  - insert / insert: a inserts song K (updated_at an hour ago); b inserts
#    K with another title and updated_at now() in the open transaction; the
#    apply waits on b's uncommitted key; after b commits, b keeps its row
#    (its updated_at is later), the conflict is logged with winner b, b's
#    shadow vector for K holds both a's and b's counters, and after
#    convergence both nodes hold b's version;
#  - the same race where a's version is the newer one: b ends with a's
#    version, decided as a logged conflict (winner a), and b's counter is
#    still in the vector (merged, not replaced by a's);
#  - update / update: b's open transaction updates a converged row that a
#    also updated (the apply waits on the row lock): the later updated_at
#    wins on both nodes, logged;
#  - update / delete, both orders: b's open transaction deletes a row that
#    a updated (before, or after b's delete); the later change (change time
#    at the origin) wins on both nodes, logged;
#  - b's racing insert rolls back: a's row is applied, with a's vector, and
#    no conflict is logged;
#  - after every race nothing is lost and a and b converge (ordered
#    checksums of every table equal), and a further round writes nothing.
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
run_repctl add sync ab relgroup=h dbs=a:source,b:target conflict_strategy=latest
is "$RC" 0 "add sync ab"
run_repctl add sync ba relgroup=h dbs=b:source,a:target conflict_strategy=latest
is "$RC" 0 "add sync ba"

meta() { pg_sql meta postgres "$1"; }

# song NODE ID : "title" of song ID, or "(none)"
song() {
	repl_val "$1" "SELECT coalesce((SELECT title FROM songs WHERE id = $2), '(none)')"
}

# vv NODE ID : the shadow vector of song ID on NODE ("(none)" without a shadow row)
vv() {
	local sh
	sh=$(repl_val "$1" "SELECT shadow FROM repctl.captured WHERE schema_name = 'public' AND table_name = 'songs'")
	repl_val "$1" "SELECT coalesce((SELECT repctl_vv::text FROM repctl.\"$sh\" WHERE id = $2), '(none)')"
}

# vv_both NODE ID : 1 when the vector holds a counter of a and one of b, else 0
vv_both() {
	local sh
	sh=$(repl_val "$1" "SELECT shadow FROM repctl.captured WHERE schema_name = 'public' AND table_name = 'songs'")
	repl_val "$1" "SELECT count(*) FROM repctl.\"$sh\" WHERE id = $2 AND repctl_vv ? 'a' AND repctl_vv ? 'b'"
}

# winners ID : "sync:winner,..." of the conflicts logged for song ID
winners() {
	meta "SELECT coalesce(string_agg(sync || ':' || winner, ',' ORDER BY id), '')
	        FROM repctl.conflict WHERE table_name = 'songs' AND (pk->>'id')::bigint = $1"
}

# converge MSG : ab and ba until quiet, then both nodes equal
converge() {
	if repl_converge 6 ab ba; then
		pass "$1: ab/ba quiescent (after $REPL_ROUNDS round(s))"
	else
		fail "$1: ab/ba quiescent within 6 rounds"
	fi
	repl_same "$1: nothing lost, nodes converge" a b
}

# ---- the racing writer on b: a psql session fed through a fifo ------------------------
mkfifo "$TEST_TMP/racer.fifo"
repl_psql b -v ON_ERROR_STOP=1 <"$TEST_TMP/racer.fifo" >"$TEST_TMP/racer.log" 2>&1 &
racer_psql=$!
cleanup_push "kill $racer_psql 2>/dev/null || true"
exec 7>"$TEST_TMP/racer.fifo"
echo "SET application_name = 'racer';" >&7

racer_state() {
	pg_sql b postgres "SELECT state || CASE WHEN backend_xid IS NOT NULL THEN ' (xid)' ELSE '' END
	                     FROM pg_stat_activity WHERE application_name = 'racer'"
}
racer_open() { [[ $(racer_state) == 'idle in transaction (xid)' ]]; }
racer_idle() { [[ $(racer_state) == idle ]]; }
racer_pid() { pg_sql b postgres "SELECT pid FROM pg_stat_activity WHERE application_name = 'racer'"; }
ok wait_until 20 racer_idle

# blocked PID : a repctl backend on b waits on backend PID
blocked() {
	[[ $(pg_sql b postgres "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'repctl'
	        AND $1 = ANY (pg_catalog.pg_blocking_pids(pid))") -ge 1 ]]
}
blocked_or_done() { ! pid_running "$2" || blocked "$1"; }

# race MSG B_SQL [A_SQL] : on b, BEGIN; B_SQL (left open); then A_SQL on a (when
# given); `repctl run ab` in the background; once its backend on b is blocked by
# b's transaction, COMMIT (or $RACE_END); wait for the run.
# Sets RUN_RC RUN_OUT RUN_ERR RUN_I RUN_U RUN_D RUN_C like repl_run.
race() {
	local msg=$1 sql=$2 asql=${3:-} rpid run_pid waited=0 re='I/U/D ([0-9]+)/([0-9]+)/([0-9]+), ([0-9]+) conflict'
	echo "BEGIN; $sql" >&7
	ok wait_until 20 racer_open
	rpid=$(racer_pid)
	if [[ -n $asql ]]; then
		pg_sql a "$REPL_DB" "$asql"
	fi
	"$REPCTL" run ab >"$TEST_TMP/race.out" 2>"$TEST_TMP/race.err" &
	run_pid=$!
	cleanup_push "kill $run_pid 2>/dev/null || true"
	wait_until 60 blocked_or_done "$rpid" "$run_pid" || true
	if blocked "$rpid"; then
		waited=1
	fi
	is "$waited" 1 "$msg: run ab waits on b's open transaction (the race is real)"
	echo "${RACE_END:-COMMIT};" >&7
	ok wait_until 20 racer_idle
	RUN_RC=0
	wait "$run_pid" || RUN_RC=$?
	RUN_OUT=$(<"$TEST_TMP/race.out")
	RUN_ERR=$(<"$TEST_TMP/race.err")
	RUN_I=-1 RUN_U=-1 RUN_D=-1 RUN_C=-1
	if [[ $RUN_OUT =~ $re ]]; then
		RUN_I=${BASH_REMATCH[1]} RUN_U=${BASH_REMATCH[2]}
		RUN_D=${BASH_REMATCH[3]} RUN_C=${BASH_REMATCH[4]}
	fi
	note "race run ab => $RUN_RC: $RUN_OUT"
	[[ -z $RUN_ERR ]] || note "stderr: ${RUN_ERR//$'\n'/ | }"
	is "$RUN_RC" 0 "$msg: the racing run ab is good"
	unlike "$RUN_ERR" 'AddressSanitizer|LeakSanitizer|runtime error:' \
		"$msg: no sanitizer report from the racing run"
	is "$(<"$TEST_TMP/racer.log")" '' "$msg: b's transaction ended without an error"
}

# ---- converged start ----------------------------------------------------------------------
pg_sql a "$REPL_DB" "INSERT INTO songs (id, title, updated_at)
                     SELECT g, 'orig ' || g, '2024-01-01 00:00:00+00' FROM generate_series(1, 20) g"
converge "initial copy"

# ---- 1. insert / insert: b's racing insert is newer and must survive ------------------------
pg_sql a "$REPL_DB" "INSERT INTO songs (id, title, updated_at) VALUES (101, 'A101 older', now() - interval '1 hour')"
race "insert/insert (b newer)" \
	"INSERT INTO songs (id, title, updated_at) VALUES (101, 'B101 newer', now());"
is "$(song b 101)" 'B101 newer' "insert/insert (b newer): b keeps its own row (not overwritten by a's older one)"
is "$(vv_both b 101)" 1 "insert/insert (b newer): b's shadow vector for song 101 holds both a's and b's counters (merged)"
note "b's vector for 101 after the race: $(vv b 101)"
converge "insert/insert (b newer)"
is "$(song a 101)" 'B101 newer' "insert/insert (b newer): b's version reached a"
is "$(song b 101)" 'B101 newer' "insert/insert (b newer): b's version stays on b"
like "$(winners 101)" '^(ab|ba):b$' "insert/insert (b newer): the conflict is logged once, winner b"
is "$(vv_both a 101)" 1 "insert/insert (b newer): a's shadow vector for song 101 holds both a's and b's counters (merged)"

# ---- 2. insert / insert: a's version is newer: decided, not just overwritten ---------------
pg_sql a "$REPL_DB" "INSERT INTO songs (id, title, updated_at) VALUES (102, 'A102 newer', now() - interval '1 hour')"
race "insert/insert (a newer)" \
	"INSERT INTO songs (id, title, updated_at) VALUES (102, 'B102 older', now() - interval '2 hours');"
is "$(song b 102)" 'A102 newer' "insert/insert (a newer): a's newer version is on b"
is "$(vv_both b 102)" 1 "insert/insert (a newer): b's shadow vector for song 102 holds both a's and b's counters (merged)"
note "b's vector for 102 after the race: $(vv b 102)"
converge "insert/insert (a newer)"
is "$(song a 102)" 'A102 newer' "insert/insert (a newer): a keeps its version"
like "$(winners 102)" '^(ab|ba):a$' "insert/insert (a newer): the conflict is logged once, winner a"

# ---- 3. update / update: the apply waits on b's row lock -----------------------------------
pg_sql a "$REPL_DB" "UPDATE songs SET title = 'A5 older', updated_at = now() - interval '1 hour' WHERE id = 5"
race "update/update" \
	"UPDATE songs SET title = 'B5 newer', updated_at = now() WHERE id = 5;"
is "$(song b 5)" 'B5 newer' "update/update: b keeps its newer update"
is "$(vv_both b 5)" 1 "update/update: b's shadow vector for song 5 holds both a's and b's counters (merged)"
converge "update/update"
is "$(song a 5)" 'B5 newer' "update/update: b's newer update reached a"
like "$(winners 5)" '^(ab|ba):b$' "update/update: the conflict is logged once, winner b"

# ---- 4. update on a, then a racing delete on b: the later delete wins ---------------------
pg_sql a "$REPL_DB" "UPDATE songs SET title = 'A6 updated', updated_at = now() WHERE id = 6"
race "update then delete" "DELETE FROM songs WHERE id = 6;"
is "$(song b 6)" '(none)' "update then delete: b's later delete stands on b"
converge "update then delete"
is "$(song a 6)" '(none)' "update then delete: the later delete wins on a too"
like "$(winners 6)" '^(ab|ba):b$' "update then delete: the conflict is logged once, winner b"

# ---- 5. a racing delete on b, then a later update on a: the update wins --------------------
race "delete then update" "DELETE FROM songs WHERE id = 7;" \
	"UPDATE songs SET title = 'A7 later', updated_at = now() WHERE id = 7"
is "$(song b 7)" 'A7 later' "delete then update: a's later update brought the row back on b"
converge "delete then update"
is "$(song a 7)" 'A7 later' "delete then update: a's later update stays on a"
is "$(song b 7)" 'A7 later' "delete then update: ... and on b"
like "$(winners 7)" '^(ab|ba):a$' "delete then update: the conflict is logged once, winner a"

# ---- 6. b's racing insert rolls back: a's row goes in as if nothing happened ---------------
pg_sql a "$REPL_DB" "INSERT INTO songs (id, title, updated_at) VALUES (103, 'A103', now() - interval '1 hour')"
RACE_END=ROLLBACK race "insert/rolled-back insert" \
	"INSERT INTO songs (id, title, updated_at) VALUES (103, 'B103 rolled back', now());"
is "$(song b 103)" 'A103' "insert/rolled-back insert: a's row is on b"
is "$(vv b 103)" "$(vv a 103)" "insert/rolled-back insert: b's vector is a's (b wrote nothing)"
converge "insert/rolled-back insert"
is "$(winners 103)" '' "insert/rolled-back insert: no conflict logged"

# ---- the end: quiet and equal ------------------------------------------------------------
exec 7>&-
repl_run ab
is "$RUN_RC/$RUN_I/$RUN_U/$RUN_D/$RUN_C" 0/0/0/0/0 "a further run of ab writes nothing"
repl_run ba
is "$RUN_RC/$RUN_I/$RUN_U/$RUN_D/$RUN_C" 0/0/0/0/0 "a further run of ba writes nothing"
repl_same "at the end" a b

done_testing
