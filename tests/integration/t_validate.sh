#!/usr/bin/env bash
# tests/integration/t_validate.sh - `repctl validate`: what would break a sync,
# found before the first run.
#
# Proves:
#  - a clean 2-node setup validates: exit 0, "all checks passed";
#  - schema drift between the nodes is found, exit 1, each problem naming the
#    table, the column/key and both nodes with a hint: a column added on one
#    node only, a column type differing (reported once, not once per
#    direction), a table dropped on one node, a different primary key; and
#    after each is undone validate passes again;
#  - a table dropped and created again without its capture, or with a
#    capture trigger disabled, is reported (changes there would never
#    replicate) until add table reinstalls it / the trigger is enabled;
#  - a node that is down is reported as unreachable (exit 1);
#  - validate writes nothing to the metadata; an unknown sync is an error;
#  - a non-superuser replication role (repl) lacking privileges is reported
#    per missing privilege with GRANT hints: SELECT/INSERT/UPDATE/DELETE/
#    TRIGGER on each table, owning the table (membership of its owner),
#    CREATE on the database (schema repctl), SET ON PARAMETER
#    session_replication_role; the hint for a table needing quotes is valid
#    SQL; node-wide problems are reported once per node even when several
#    syncs use the node;
#  - after the GRANTs validate passes, and that pass is true: repl can then
#    really read every herd table and set session_replication_role.
# shellcheck disable=SC2119 # meta_snapshot, rc_nonzero: optional arguments
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/common.sh"
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/pg.sh"
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/fixtures.sh"

pg_start META
pg_start A
pg_start B
fx_env META
fx_rails_db A app
fx_rails_db B app
fx_install
fx_add_node a A app
fx_add_node b B app
for n in a b; do
	run_repctl add all tables --herd=h --db=$n
	is "$RC" 0 "add all tables --herd=h --db=$n"
done
run_repctl add sync s herd=h dbs=a:source,b:source
is "$RC" 0 "add sync s (a, b)"

# validate [SYNC] : run repctl validate; V = its stdout and stderr (the
# report's stream is not what is under test)
validate() {
	run_repctl validate "$@"
	V=$OUT$'\n'$ERR
}
# validate_clean MSG : validate passes
validate_clean() {
	validate
	is "$RC" 0 "$1: validate exits 0"
	like "$V" '^all checks passed$' "$1: all checks passed"
}

snap=$(meta_snapshot)
validate_clean "clean setup"
like "$V" "^sync 's': OK \(6 table\(s\) on 2 node\(s\)\)" "clean setup: sync s OK with its 6 tables"

# ---- schema drift ----------------------------------------------------------------------
pg_sql B app 'ALTER TABLE public.songs ADD COLUMN genre text'
validate
is "$RC" 1 "column on one node only: exit 1"
like "$V" "problem: table public.songs: column 'genre' \(text\) exists on node 'b' but not on node 'a'" \
	"... names the table, the column and both nodes"
like "$V" "^  hint: .*'a'.*ADD COLUMN" "... with a hint"
like "$V" '^1 problem\(s\) found$' "... counts one problem"
pg_sql B app 'ALTER TABLE public.songs DROP COLUMN genre'
validate_clean "column dropped again"

pg_sql B app 'ALTER TABLE public.albums ALTER COLUMN name TYPE varchar(20)'
validate
is "$RC" 1 "column type differs: exit 1"
like "$V" "table public.albums: column 'name' is .* on node '.' but .* on node '.'" \
	"... names the column, both types and both nodes"
is "$(grep -c "column 'name'" <<<"$V")" 1 "... reported once, not once per direction"
pg_sql B app 'ALTER TABLE public.albums ALTER COLUMN name TYPE text'
validate_clean "type made equal again"

pg_sql B app 'DROP TABLE archive.old_songs'
validate
is "$RC" 1 "table dropped on one node: exit 1"
like "$V" "table archive.old_songs is in the herd but does not exist on node 'b'" \
	"... names the table and the node"
like "$V" "hint: .*remove table archive.old_songs --db=b" "... with a hint"
pg_sql B app 'CREATE TABLE archive.old_songs (id bigint PRIMARY KEY, title text, updated_at timestamptz)'
# the table is back, but not its capture triggers: changes there would never replicate
validate
is "$RC" 1 "table created again without its capture: exit 1"
like "$V" "problem: table archive.old_songs on node 'b': the capture trigger repctl_capture_upd is missing" \
	"... names the table, the node and the missing capture trigger"
like "$V" "hint: run 'repctl add table archive.old_songs --herd=h --db=b' again" "... with a hint naming the herd"
run_repctl add table archive.old_songs --herd=h --db=b
is "$RC" 0 "add table archive.old_songs --db=b reinstalls the capture"
validate_clean "table created again and captured"
pg_sql B app 'ALTER TABLE archive.old_songs DISABLE TRIGGER repctl_capture_ins'
validate
is "$RC" 1 "a disabled capture trigger: exit 1"
like "$V" "problem: table archive.old_songs on node 'b': the capture trigger repctl_capture_ins is disabled" \
	"... names the table, the node and the trigger"
like "$V" "hint: ALTER TABLE archive.old_songs ENABLE ALWAYS TRIGGER repctl_capture_ins;" "... with the fix"
pg_sql B app 'ALTER TABLE archive.old_songs ENABLE ALWAYS TRIGGER repctl_capture_ins'
validate_clean "capture trigger enabled again"

pg_sql B app 'ALTER TABLE public.songs DROP CONSTRAINT songs_pkey; ALTER TABLE public.songs ADD PRIMARY KEY (id, title)'
validate
is "$RC" 1 "different primary key: exit 1"
like "$V" "table public.songs: primary key \{id\} on node 'a' but \{id,title\} on node 'b'" \
	"... names both keys and both nodes"
like "$V" "hint: the key must be the same" "... with a hint"
pg_sql B app 'ALTER TABLE public.songs DROP CONSTRAINT songs_pkey; ALTER TABLE public.songs ADD PRIMARY KEY (id)'
validate_clean "same key again"

# ---- a node down -----------------------------------------------------------------------
pg_stop B
validate
is "$RC" 1 "node down: exit 1"
like "$V" "cannot connect to node 'b'" "node down: names the node"
like "$V" "Connection refused" "node down: says it is unreachable"
like "$V" "hint: is PostgreSQL running" "node down: hint"
unlike "$V" "all checks passed" "node down: does not claim success"
pg_start B
validate_clean "node back up"

validate nosuch
is "$RC" 1 "validate of an unknown sync: exit 1"
like "$ERR" "no sync 'nosuch'" "... names it"
is "$(meta_snapshot)" "$snap" "validate wrote nothing to the metadata"

# ---- a non-superuser replication role -------------------------------------------------
# The app's tables belong to role rails; schema archive was created by the DBA
# (postgres) and rails only got USAGE on it; the replication role is repl.
fx_rails_db A app_repl
pg_psql A app_repl <<-'SQL'
	CREATE ROLE rails;
	CREATE ROLE repl LOGIN;
	GRANT USAGE ON SCHEMA archive TO rails;
	DO $$
	DECLARE t record;
	BEGIN
	    FOR t IN SELECT n.nspname, c.relname FROM pg_class c
	             JOIN pg_namespace n ON n.oid = c.relnamespace
	             WHERE n.nspname IN ('public', 'archive') AND c.relkind IN ('r', 'v')
	    LOOP
	        EXECUTE format('ALTER TABLE %I.%I OWNER TO rails', t.nspname, t.relname);
	    END LOOP;
	END $$;
	REVOKE CONNECT ON DATABASE app_repl FROM PUBLIC;
	GRANT CONNECT ON DATABASE app_repl TO repl;
SQL
PA=$(pg_port A)
# Register the tables as the superuser, then switch the node to repl (so this
# works whatever add table installs on the node).
run_repctl add database ar dbname=app_repl host=127.0.0.1 port="$PA" user=postgres
is "$RC" 0 "add database ar"
run_repctl add all tables --herd=h --db=ar
is "$RC" 0 "add all tables --herd=h --db=ar"
run_repctl update database ar user=repl
is "$RC" 0 "update database ar user=repl (repl can connect)"
is "$(pg_sql META postgres "SELECT conninfo ~ 'user=repl' FROM repctl.node WHERE name = 'ar'")" t \
	"node ar now connects as repl"
run_repctl add sync s2 herd=h dbs=ar:source,b:source
is "$RC" 0 "add sync s2 (ar, b)"

validate s2
is "$RC" 1 "repl without privileges: exit 1"
for t in public.songs public.albums public.schema_migrations public.ar_internal_metadata archive.old_songs; do
	like "$V" "node 'ar': the replication user lacks SELECT, INSERT, UPDATE, DELETE, TRIGGER on $t\$" \
		"missing table privileges on $t named"
	like "$V" "hint: GRANT SELECT, INSERT, UPDATE, DELETE, TRIGGER ON $t TO " "... with a GRANT hint for $t"
	like "$V" "node 'ar': the replication user must own $t \(or be a member of its owner 'rails'\)" \
		"ownership of $t named"
done
like "$V" "hint: GRANT rails TO " "ownership: GRANT hint"
has_str "$V" 'ON public."Weird ""name""" TO ' "the GRANT hint for the quoted table is valid SQL"
like "$V" "node 'ar': .*session_replication_role" "SET ON PARAMETER session_replication_role named"
like "$V" "hint: GRANT SET ON PARAMETER session_replication_role TO " "... with a GRANT hint"
like "$V" "node 'ar': the replication user cannot create the schema 'repctl'" "CREATE on the database named"
like "$V" "hint: GRANT CREATE ON DATABASE " "... with a GRANT hint"
unlike "$V" "node 'b': the replication user" "the superuser node b has no privilege problem"
unlike "$V" "all checks passed" "does not claim success"

# Node-wide problems once per node, however many syncs use it.
run_repctl add sync s3 herd=h dbs=ar:source,b:target
is "$RC" 0 "add sync s3 (ar, b)"
validate
is "$RC" 1 "validate of all syncs: exit 1"
is "$(grep -c "node 'ar': the replication user may not set session_replication_role" <<<"$V")" 1 \
	"session_replication_role problem of node ar reported once"
is "$(grep -c "node 'ar': the replication user cannot create the schema" <<<"$V")" 1 \
	"schema repctl problem of node ar reported once"
run_repctl remove sync s3
is "$RC" 0 "remove sync s3"

# Before the grants, repl really cannot do what the engine needs.
# shellcheck disable=SC2317 # called through ok / fails
as_repl() {
	"$PG_BIN/psql" -X -A -t -q -v ON_ERROR_STOP=1 \
		-d "host=127.0.0.1 port=$PA user=repl dbname=app_repl" -c "$1"
}
fails as_repl 'SET session_replication_role = replica'
fails as_repl 'SELECT count(*) FROM public.songs'

pg_psql A app_repl <<-'SQL'
	GRANT SELECT, INSERT, UPDATE, DELETE, TRIGGER ON ALL TABLES IN SCHEMA public TO repl;
	GRANT rails TO repl;
	GRANT CREATE ON DATABASE app_repl TO repl;
	GRANT SET ON PARAMETER session_replication_role TO repl;
SQL
validate s2
is "$RC" 0 "after all the GRANTs validate passes"
like "$V" '^all checks passed$' "... all checks passed"
for t in archive.old_songs 'public."Weird ""name"""' public.albums public.ar_internal_metadata \
	public.schema_migrations public.songs; do
	ok as_repl "SELECT count(*) FROM $t"
done
ok as_repl 'SET session_replication_role = replica'
ok as_repl 'CREATE SCHEMA repctl_probe; DROP SCHEMA repctl_probe'

done_testing
