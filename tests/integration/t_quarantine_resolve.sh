#!/usr/bin/env bash
# t_quarantine_resolve.sh - `conflicts resolve ID keep=incoming` deletes
# exactly the target rows that collide with the quarantined row under the
# violated unique index itself: its predicate (a soft-delete partial index
# keeps the history rows that share the email), its expressions
# (lower(email): only the case-insensitive collider goes), several columns,
# a DEFERRABLE unique constraint.  --dry-run lists those rows and changes
# nothing; keep=existing still deletes the incoming row on its source.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib/common.sh"
. "$HERE/lib/pg.sh"

pg_start meta
for n in a b; do
	pg_start "$n"
	pg_createdb "$n" app
	pg_sql "$n" app "
	  CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL, name text,
	    deleted_at timestamptz, updated_at timestamptz NOT NULL DEFAULT now());
	  CREATE UNIQUE INDEX users_email_live ON users (email) WHERE deleted_at IS NULL;
	  CREATE TABLE accounts (id bigint PRIMARY KEY, email text NOT NULL, name text,
	    updated_at timestamptz NOT NULL DEFAULT now());
	  CREATE UNIQUE INDEX accounts_email_ci ON accounts (lower(email));
	  CREATE TABLE members (id bigint PRIMARY KEY, team int NOT NULL, person int NOT NULL,
	    role text, updated_at timestamptz NOT NULL DEFAULT now(),
	    CONSTRAINT members_team_person UNIQUE (team, person));
	  CREATE TABLE slugs (id bigint PRIMARY KEY, slug text,
	    CONSTRAINT slugs_slug_key UNIQUE (slug) DEFERRABLE INITIALLY DEFERRED)"
done
export REPCTL_META="$(pg_conninfo meta) dbname=postgres" REPCTL_STATE_DIR=$TEST_TMP/state
unset REPCTL_CONFIG REPCTL_NODE
rc() {
	run_repctl "$@"
	is "$RC" 0 "repctl $* (${ERR:0:300})"
	if [[ $1 == conflicts ]]; then
		while IFS= read -r l; do note "  $l"; done <<<"$OUT"
	fi
}
q() { pg_sql "$1" app "$2"; }
m() { pg_sql meta postgres "$1"; }
# every table of a node, ordered, in one checksum
sums() {
	q "$1" "SELECT md5(string_agg(x, '|' ORDER BY x)) FROM (
	  SELECT 'u' || t::text AS x FROM (SELECT id, email, name, deleted_at FROM users) t
	  UNION ALL SELECT 'a' || t::text FROM (SELECT id, email, name FROM accounts) t
	  UNION ALL SELECT 'm' || t::text FROM (SELECT id, team, person, role FROM members) t
	  UNION ALL SELECT 's' || t::text FROM slugs t) s"
}
qid() { m "SELECT id FROM repctl.quarantine WHERE sync = '$1' AND table_name = '$2' AND resolved_at IS NULL"; }
runs() { for _ in 1 2 3; do rc run ab; rc run ba; done; }

rc install
for n in a b; do
	rc add database "$n" conn="$(pg_conninfo "$n" app)"
	rc add all tables --herd=h --db="$n" --exclude=slugs
done
rc add sync ab relgroup=h dbs=a:source,b:target
rc add sync ba relgroup=h dbs=b:source,a:target

# history: two soft-deleted users that had x@example.org, on both nodes
q a "INSERT INTO users (id, email, name, deleted_at) VALUES
       (11, 'x@example.org', 'old 1', now() - interval '2 years'),
       (12, 'x@example.org', 'old 2', now() - interval '1 year');
     INSERT INTO accounts (id, email, name) VALUES (13, 'other@example.org', 'other')"
runs
is "$(q b "SELECT count(*) FROM users WHERE deleted_at IS NOT NULL")" 2 "history rows replicated"

# both nodes sign up a live x@example.org, a Y@example.org that b has as
# y@example.org, and the same (team, person) pair
q a "INSERT INTO users (id, email, name) VALUES (1, 'x@example.org', 'from a');
     INSERT INTO accounts (id, email, name) VALUES (1, 'Y@Example.org', 'from a');
     INSERT INTO members (id, team, person, role) VALUES (1, 7, 7, 'from a')"
q b "INSERT INTO users (id, email, name) VALUES (101, 'x@example.org', 'from b');
     INSERT INTO accounts (id, email, name) VALUES (101, 'y@example.org', 'from b'),
       (102, 'yy@example.org', 'b2');
     INSERT INTO members (id, team, person, role) VALUES (101, 7, 7, 'from b'),
       (102, 7, 8, 'b2'), (103, 8, 7, 'b3')"
rc run ab
rc run ba
is "$(m "SELECT count(*) FROM repctl.quarantine WHERE resolved_at IS NULL")" 6 \
	"each colliding row is quarantined in each direction"
is "$(m "SELECT constraint_name FROM repctl.quarantine WHERE sync = 'ab' AND table_name = 'accounts'")" \
	accounts_email_ci "the expression index is recorded as the reason"

# --- partial unique index: the soft-deleted history survives ---------------
uid=$(qid ab users)
sa=$(sums a) sb=$(sums b)
rc conflicts resolve "$uid" keep=incoming --dry-run
like "$OUT" '"id": 101' "dry run lists b's live collider"
unlike "$OUT" '"id": 1[12][,}]' "... and not the soft-deleted rows outside the predicate"
like "$OUT" 'users_email_live' "... naming the index"
like "$OUT" 'nothing was changed' "... and says it changed nothing"
is "$(sums a)" "$sa" "dry run: node a unchanged"
is "$(sums b)" "$sb" "dry run: node b unchanged"
is "$(m "SELECT resolution IS NULL FROM repctl.quarantine WHERE id = $uid")" t \
	"dry run: the quarantine is not touched"

rc conflicts resolve "$uid" keep=incoming
like "$OUT" '"id": 101' "keep=incoming prints the row it deleted"
unlike "$OUT" '"id": 1[12][,}]' "... not the history rows"
is "$(q b "SELECT string_agg(id::text, ',' ORDER BY id) FROM users")" "11,12" \
	"only the live collider was deleted on b; the history rows are kept"

# --- unique expression index lower(email) ----------------------------------
aid=$(qid ab accounts)
sa=$(sums a) sb=$(sums b)
rc conflicts resolve "$aid" keep=incoming --dry-run
like "$OUT" '"id": 101' "dry run lists the case-insensitive collider"
unlike "$OUT" '"id": 10[23]' "... only it"
is "$(sums a)$(sums b)" "$sa$sb" "dry run on the expression index changes nothing"
rc conflicts resolve "$aid" keep=incoming
unlike "$ERR" "not a unique key" "an expression index is a unique key"
is "$(q b "SELECT string_agg(id::text, ',' ORDER BY id) FROM accounts")" "13,102" \
	"only y@example.org was deleted on b (yy@example.org kept)"

# --- plain multi-column unique, settled with keep=existing -----------------
mid=$(qid ab members)
rc conflicts resolve "$mid" keep=incoming --dry-run
like "$OUT" '"id": 101' "dry run on a multi-column unique lists the (7,7) collider"
unlike "$OUT" '"id": 10[23]' "... not rows sharing only one column"
sa=$(sums a) sb=$(sums b)
rc conflicts resolve "$mid" keep=existing --dry-run
like "$OUT" '"id": 1[,}]' "keep=existing --dry-run shows the incoming row on its source"
is "$(sums a)" "$sa" "keep=existing --dry-run leaves the source unchanged"
is "$(sums b)" "$sb" "... and the target"
rc conflicts resolve "$mid" keep=existing
is "$(q a "SELECT count(*) FROM members WHERE id = 1")" 0 "keep=existing deleted the incoming row on a"
is "$(m "SELECT resolved_at IS NOT NULL FROM repctl.quarantine WHERE id = $mid")" t \
	"keep=existing resolves the quarantine"

# --- everything converges through the normal apply path --------------------
runs
is "$(sums a)" "$(sums b)" "after resolving, the nodes converge"
is "$(q a "SELECT string_agg(id || ':' || name, ',' ORDER BY id) FROM users")" \
	"1:from a,11:old 1,12:old 2" "users: a's row won, the history is kept everywhere"
is "$(q a "SELECT string_agg(id || ':' || email, ',' ORDER BY id) FROM accounts")" \
	"1:Y@Example.org,13:other@example.org,102:yy@example.org" "accounts: a's row won"
is "$(q a "SELECT string_agg(id::text, ',' ORDER BY id) FROM members")" "101,102,103" \
	"members: b's rows kept"
is "$(m "SELECT count(*) FROM repctl.quarantine WHERE resolved_at IS NULL")" 0 \
	"no quarantined row left"

# --- a DEFERRABLE unique constraint (found through its index) --------------
# slugs is not replicated: this quarantine record stands for a row another
# node sent that the constraint refused.
q b "INSERT INTO slugs VALUES (1, 'intro'), (2, 'outro'), (3, NULL)"
sid=$(m "INSERT INTO repctl.quarantine (sync, source, target, schema_name, table_name, pk,
  row_data, reason, constraint_name) VALUES ('ab', 'a', 'b', 'public', 'slugs', '{\"id\": 9}',
  '{\"id\": 9, \"slug\": \"intro\"}',
  'duplicate key value violates unique constraint \"slugs_slug_key\"', 'slugs_slug_key')
  RETURNING id")
sb=$(sums b)
rc conflicts resolve "$sid" keep=incoming --dry-run
like "$OUT" '"id": 1[,}]' "deferrable unique: dry run lists the collider"
unlike "$OUT" '"id": [23][,}]' "... only it"
is "$(sums b)" "$sb" "... and changes nothing"
rc conflicts resolve "$sid" keep=incoming
is "$(q b "SELECT string_agg(id::text, ',' ORDER BY id) FROM slugs")" "2,3" \
	"deferrable unique: exactly the collider deleted"

# a row refused by a check is not settled by deleting other rows
q b "ALTER TABLE slugs ADD CONSTRAINT slugs_short CHECK (length(slug) < 20)"
cid=$(m "INSERT INTO repctl.quarantine (sync, source, target, schema_name, table_name, pk,
  row_data, reason, constraint_name) VALUES ('ab', 'a', 'b', 'public', 'slugs', '{\"id\": 8}',
  '{\"id\": 8, \"slug\": \"a very long slug indeed\"}', 'violates check constraint',
  'slugs_short') RETURNING id")
run_repctl conflicts resolve "$cid" keep=incoming
is "$RC" 1 "keep=incoming refuses a row refused by a check"
like "$ERR" "check constraint" "... saying it is a check constraint"
is "$(q b "SELECT count(*) FROM slugs")" 2 "... and deletes nothing"
done_testing
