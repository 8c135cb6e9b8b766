#!/usr/bin/env bash
# tests/integration/t_quarantine_paused.sh - a quarantined row is marked
# resolved only when it was really applied, never because its table was
# paused for schema drift during a run (issue 11, item 5).
#
# Sync ab (a -> b, bucardo_latest).  users has UNIQUE (email) on both
# nodes; b has a row of its own with the email a's user 1 uses.
#
# Proves:
#  - run ab quarantines a's user 1 (users_email_key), the other rows flow;
#  - a adds a column to users (drift: b has not): runs of ab pause users
#    (the run is reported bad, naming the table) while songs flows, and the
#    quarantine entry stays unresolved, run after run; changes a makes to
#    users meanwhile wait;
#  - b gets the column: users resumes, a's changes made during the pause
#    arrive; user 1 still collides: still quarantined, unresolved;
#  - b's colliding row goes: the next run applies user 1, and only then is
#    the entry resolved; a and b hold the same users.
# Today the run that paused users marks the entry "applied on retry" and
# user 1 never arrives, even after the collision is gone.
# shellcheck disable=SC2317 # helpers are called through ok / on_failure_push
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

REPL_SCHEMA_SQL+=$(
	cat <<'SQL'

CREATE TABLE public.users (
    id         bigint PRIMARY KEY,
    email      text NOT NULL UNIQUE,
    name       text,
    updated_at timestamptz NOT NULL DEFAULT now()
);
SQL
)

repl_setup a b
run_repctl add sync ab relgroup=h dbs=a:source,b:target conflict_strategy=bucardo_latest
is "$RC" 0 "add sync ab"

meta() { pg_sql meta postgres "$1"; }
on_failure_push "echo '# ---- repctl.quarantine:'; pg_sql meta postgres 'SELECT * FROM repctl.quarantine ORDER BY id' | sed 's/^/# /'"

users() { repl_val "$1" "SELECT coalesce(string_agg(id || '=' || email || '=' || coalesce(name, '-'), ',' ORDER BY id), '') FROM users"; }
songs() { repl_val "$1" "SELECT coalesce(string_agg(id::text, ',' ORDER BY id), '') FROM songs"; }
# entry : "constraint|resolved or open|attempts" of the quarantine entry of user 1
entry() {
	meta "SELECT concat_ws('|', constraint_name, CASE WHEN resolved_at IS NULL THEN 'open' ELSE 'resolved' END)
	        FROM repctl.quarantine WHERE sync = 'ab' AND table_name = 'users' AND pk = '{\"id\": 1}'"
}
attempts() { meta "SELECT attempts FROM repctl.quarantine WHERE sync = 'ab' AND table_name = 'users' AND pk = '{\"id\": 1}'"; }

# ---- a row quarantined --------------------------------------------------------------------------
repl_sql a "INSERT INTO users (id, email, name) VALUES (1, 'x@example.org', 'from a'), (2, 'a2@example.org', 'a2')"
repl_sql b "INSERT INTO users (id, email, name) VALUES (101, 'x@example.org', 'from b')"
repl_run ab
is "$RUN_RC" 0 "run ab is good although a row is refused"
is "$(users b)" "2=a2@example.org=a2,101=x@example.org=from b" "user 2 arrived, user 1 did not"
is "$(entry)" "users_email_key|open" "user 1 is quarantined (users_email_key)"

# ---- drift: users paused, the entry stays open ---------------------------------------------------------
repl_sql a "ALTER TABLE users ADD COLUMN nickname text"
repl_sql a "UPDATE users SET name = 'a2 during the pause', updated_at = now() WHERE id = 2;
            INSERT INTO users (id, email, name) VALUES (3, 'a3@example.org', 'a3 during the pause');
            INSERT INTO songs (id, title) VALUES (1, 'unrelated 1')"
before=$(attempts)
repl_run ab
ok test "$RUN_RC" -ne 0
like "$RUN_OUT$RUN_ERR" 'users' "the run reports users as paused"
is "$(songs b)" "1" "songs flowed in the run that paused users"
is "$(users b)" "2=a2@example.org=a2,101=x@example.org=from b" "users waits (paused)"
is "$(entry)" "users_email_key|open" "the run that paused users left the entry open"
repl_sql a "INSERT INTO songs (id, title) VALUES (2, 'unrelated 2')"
repl_run ab
is "$(songs b)" "1,2" "songs flowed in the next run too"
is "$(entry)" "users_email_key|open" "a second paused run left the entry open too"
note "attempts: $before before the pause, $(attempts) after two paused runs"

# ---- drift fixed: users resumes; user 1 still collides ---------------------------------------------------
repl_sql b "ALTER TABLE users ADD COLUMN nickname text"
before=$(attempts)
repl_run ab
is "$RUN_RC" 0 "drift fixed: run ab is good"
is "$(users b)" "2=a2@example.org=a2 during the pause,3=a3@example.org=a3 during the pause,101=x@example.org=from b" \
	"drift fixed: a's changes made during the pause arrived"
is "$(entry)" "users_email_key|open" "drift fixed: user 1 still collides and is still quarantined"
ok test "$(attempts)" -gt "$before"

# ---- collision fixed: applied, and only now resolved ---------------------------------------------------
repl_sql b "DELETE FROM users WHERE id = 101"
repl_run ab
is "$RUN_RC" 0 "collision fixed: run ab is good"
is "$(repl_val b "SELECT email || '=' || name FROM users WHERE id = 1")" "x@example.org=from a" "user 1 arrived"
is "$(entry)" "users_email_key|resolved" "only now is the entry resolved"
is "$(users b)" "$(users a)" "a and b hold the same users"
repl_run ab
is "$RUN_RC/$RUN_I/$RUN_U/$RUN_D" 0/0/0/0 "a further run is quiet"

done_testing
