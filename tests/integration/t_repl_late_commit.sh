#!/usr/bin/env bash
# tests/integration/t_repl_late_commit.sh - no lost commit: a transaction
# open across a batch boundary is still replicated (batches are defined by
# snapshots, not by "the highest xid seen").
#
# Proves, with sync ab (a -> b) run by `repctl run`:
#  - T1 (older xid) inserts id=1, updates id=50 and deletes id=51 and stays
#    open; T2 (younger xid) inserts id=2 and commits; a run sends id=2 only;
#    T1 commits; the next run sends all of T1's changes;
#  - a transaction open across two runs (with other commits and runs in
#    between) is sent once it commits;
#  - a transaction that rolls back after a run sent nothing and sends
#    nothing, without an error;
#  - the rows changed by a transaction inside a savepoint that was released
#    arrive with it; those of a rolled-back savepoint do not;
#  - after all that, a and b are identical and a further run writes nothing.
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
run_repctl add sync ab relgroup=h dbs=a:source,b:target conflict_strategy=bucardo_latest
is "$RC" 0 "add sync ab"

# ---- sessions kept open through a fifo -----------------------------------------------
# session_open NAME FD : a psql on a's archive database reading from a fifo
# held open on file descriptor FD; its application_name is NAME.
declare -A SESSION_PID=()
session_open() {
	local name=$1 fd=$2 fifo=$TEST_TMP/$1.fifo
	mkfifo "$fifo"
	repl_psql a -v ON_ERROR_STOP=1 <"$fifo" >"$TEST_TMP/$name.log" 2>&1 &
	SESSION_PID[$name]=$!
	cleanup_push "kill ${SESSION_PID[$name]} 2>/dev/null || true"
	eval "exec $fd>\"\$fifo\""
	echo "SET application_name = '$name';" >&"$fd"
}

# session_state NAME : its pg_stat_activity state, "(xid)" appended when it has one
session_state() {
	pg_sql a postgres "SELECT state || CASE WHEN backend_xid IS NOT NULL THEN ' (xid)' ELSE '' END
	                     FROM pg_stat_activity WHERE application_name = '$1'"
}

# in_tx_with_xid NAME / idle NAME : for wait_until
in_tx_with_xid() { [[ $(session_state "$1") == 'idle in transaction (xid)' ]]; }
idle() { [[ $(session_state "$1") == idle ]]; }

# present NODE ID : 1 when songs has id ID
present() { repl_val "$1" "SELECT count(*) FROM songs WHERE id = $2"; }

# ---- a converged start and a position for the edge ----------------------------------------
pg_sql a "$REPL_DB" "INSERT INTO songs (id, title) SELECT g, 'song ' || g FROM generate_series(50, 60) g"
repl_run ab
is "$RUN_RC/$RUN_I" 0/11 "first run copies the 11 starting rows"

# ---- T1 open across a run ------------------------------------------------------------------
session_open t1 7
echo "BEGIN; INSERT INTO songs (id, title) VALUES (1, 'T1 late');
      UPDATE songs SET title = 'T1 updated', updated_at = now() WHERE id = 50;
      DELETE FROM songs WHERE id = 51;" >&7
ok wait_until 10 in_tx_with_xid t1
t1_xid=$(pg_sql a postgres "SELECT backend_xid FROM pg_stat_activity WHERE application_name = 't1'")
pg_sql a "$REPL_DB" "INSERT INTO songs (id, title) VALUES (2, 'T2 committed')"
t2_xid=$(repl_val a "SELECT xmin FROM songs WHERE id = 2")
note "T1 xid $t1_xid (open), T2 xid $t2_xid (committed)"
ok test "$t1_xid" -lt "$t2_xid"
repl_run ab
is "$RUN_RC/$RUN_I/$RUN_U/$RUN_D" 0/1/0/0 "run while T1 is open: only T2's row"
is "$(present b 2)" 1 "T2's id=2 arrived"
is "$(present b 1)" 0 "T1's id=1 not yet (uncommitted)"
echo "COMMIT;" >&7
ok wait_until 10 idle t1
is "$(present a 1)" 1 "T1 committed on a"
repl_run ab
is "$RUN_RC/$RUN_I/$RUN_U/$RUN_D" 0/1/1/1 "the next run sends T1's insert, update and delete"
is "$(present b 1)" 1 "T1's late commit (older xid) arrived: id=1"
is "$(repl_val b 'SELECT title FROM songs WHERE id = 50')" 'T1 updated' "T1's update arrived"
is "$(present b 51)" 0 "T1's delete arrived"

# ---- T3 open across two runs --------------------------------------------------------------
echo "BEGIN; INSERT INTO songs (id, title) VALUES (3, 'T3 very late');" >&7
ok wait_until 10 in_tx_with_xid t1
pg_sql a "$REPL_DB" "INSERT INTO songs (id, title) VALUES (4, 'T4')"
repl_run ab
is "$RUN_RC/$RUN_I" 0/1 "first run during T3: T4's row"
pg_sql a "$REPL_DB" "INSERT INTO songs (id, title) VALUES (5, 'T5')"
repl_run ab
is "$RUN_RC/$RUN_I" 0/1 "second run during T3: T5's row"
repl_run ab
is "$RUN_RC/$RUN_I/$RUN_U/$RUN_D" 0/0/0/0 "third run during T3: nothing"
is "$(present b 3)" 0 "T3 not yet"
echo "COMMIT;" >&7
ok wait_until 10 idle t1
repl_run ab
is "$RUN_RC/$RUN_I" 0/1 "after T3 commits: its row"
is "$(present b 3)" 1 "T3, open across three runs, arrived"

# ---- a rollback after a run, and savepoints ----------------------------------------------
echo "BEGIN; INSERT INTO songs (id, title) VALUES (6, 'T6 rolled back');" >&7
ok wait_until 10 in_tx_with_xid t1
repl_run ab
is "$RUN_RC/$RUN_I" 0/0 "run during T6: nothing"
echo "ROLLBACK;" >&7
ok wait_until 10 idle t1
repl_run ab
is "$RUN_RC/$RUN_I/$RUN_U/$RUN_D" 0/0/0/0 "after T6's rollback: nothing, no error"
is "$(present b 6)" 0 "the rolled-back row is nowhere"

echo "BEGIN; INSERT INTO songs (id, title) VALUES (7, 'T7 outer');
      SAVEPOINT s1; INSERT INTO songs (id, title) VALUES (8, 'T7 kept savepoint'); RELEASE SAVEPOINT s1;
      SAVEPOINT s2; INSERT INTO songs (id, title) VALUES (9, 'T7 rolled-back savepoint'); ROLLBACK TO SAVEPOINT s2;" >&7
ok wait_until 10 in_tx_with_xid t1
repl_run ab
is "$(present b 7)$(present b 8)" 00 "T7 open: nothing yet"
echo "COMMIT;" >&7
ok wait_until 10 idle t1
repl_run ab
is "$RUN_RC/$RUN_I" 0/2 "T7 committed: 2 rows"
is "$(present b 7)$(present b 8)$(present b 9)" 110 "the savepoint rows that committed arrived, the rolled-back one did not"

exec 7>&-
repl_same "late commits" a b
repl_run ab
is "$RUN_RC/$RUN_I/$RUN_U/$RUN_D" 0/0/0/0 "a further run writes nothing"

done_testing
