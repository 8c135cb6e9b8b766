#!/usr/bin/env bash
# t_repl_quarantine.sh - a row refused by a target's other unique index is
# quarantined with its reason while every other row keeps flowing; it is
# retried on later runs, shown by conflicts and settled by `conflicts
# resolve`, after which the nodes converge.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib/common.sh"
. "$HERE/lib/pg.sh"

pg_start meta
for n in a b; do
	pg_start "$n"
	pg_createdb "$n" app
	pg_sql "$n" app "CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL UNIQUE,
	  name text, updated_at timestamptz NOT NULL DEFAULT now());
	  CREATE TABLE notes (id bigint PRIMARY KEY, body text, updated_at timestamptz NOT NULL DEFAULT now())"
done
export REPCTL_META="$(pg_conninfo meta) dbname=postgres" REPCTL_STATE_DIR=$TEST_TMP/state
unset REPCTL_CONFIG REPCTL_NODE
rc() { run_repctl "$@"; is "$RC" 0 "repctl $* (${ERR:0:200})"; }
rc install
for n in a b; do
	rc add database "$n" conn="$(pg_conninfo "$n" app)"
	rc add all tables --herd=h --db="$n"
done
rc add sync ab relgroup=h dbs=a:source,b:target
rc add sync ba relgroup=h dbs=b:source,a:target
q() { pg_sql "$1" app "$2"; }
sums() { q "$1" "SELECT md5(string_agg(t::text, '|' ORDER BY id)) FROM (SELECT id, email, name FROM users) t"; }

# two nodes insert different rows with the same email, plus other rows
q a "INSERT INTO users (id, email, name) VALUES (1, 'x@example.org', 'from a'), (2, 'a2@example.org', 'a2');
     INSERT INTO notes VALUES (10, 'note a')"
q b "INSERT INTO users (id, email, name) VALUES (101, 'x@example.org', 'from b'), (102, 'b2@example.org', 'b2');
     INSERT INTO notes VALUES (20, 'note b')"
run_repctl run ab
is "$RC" 0 "run ab succeeds although a row is refused"
like "$ERR" "quarantined" "the refused row is reported as quarantined"
run_repctl run ba
is "$RC" 0 "run ba succeeds too"
is "$(q b "SELECT count(*) FROM users WHERE id = 2")" 1 "the other user row flowed a -> b"
is "$(q a "SELECT count(*) FROM users WHERE id = 102")" 1 "the other user row flowed b -> a"
is "$(q b "SELECT count(*) FROM notes")" 2 "other tables flowed"
is "$(q b "SELECT count(*) FROM users WHERE id = 1")" 0 "the colliding row did not replace b's"
is "$(q meta "SELECT count(*) FROM repctl.quarantine WHERE resolved_at IS NULL" 2>/dev/null || pg_sql meta postgres "SELECT count(*) FROM repctl.quarantine WHERE resolved_at IS NULL")" 2 \
	"one quarantined row per direction"
reason=$(pg_sql meta postgres "SELECT reason FROM repctl.quarantine WHERE sync = 'ab'")
like "$reason" "duplicate key|unique" "the reason is recorded"
rc conflicts
like "$OUT" "quarantined rows" "conflicts shows the quarantine"
like "$OUT" "users" "... naming the table"

# retried on every run, still refused, attempts grow
rc run ab
is "$(pg_sql meta postgres "SELECT attempts FROM repctl.quarantine WHERE sync = 'ab'")" 2 "retried on the next run"

run_repctl status ab --json
like "$OUT" '"quarantined": 1' "status counts the quarantined row"
like "$OUT" '"health": "(yellow|red)"' "and the sync is not green"

# settle: the row from a wins; b's colliding row goes
id=$(pg_sql meta postgres "SELECT id FROM repctl.quarantine WHERE sync = 'ab'")
run_repctl conflicts resolve "$id" keep=bogus
fails test "$RC" -eq 0
rc conflicts resolve "$id" keep=incoming
for i in 1 2 3; do rc run ab; rc run ba; done
is "$(sums a)" "$(sums b)" "after resolving, the nodes converge"
is "$(q a "SELECT name FROM users WHERE email = 'x@example.org'")" "from a" "the incoming row won"
is "$(pg_sql meta postgres "SELECT count(*) FROM repctl.quarantine WHERE resolved_at IS NULL")" 0 \
	"no quarantined row left"
done_testing
