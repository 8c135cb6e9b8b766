#!/usr/bin/env bash
# tests/integration/t_fleet_privs.sh - least privilege, TLS and secrets
# (issue 7, item 6).
#
# Proves:
#  - a non-superuser replication role works end to end on PostgreSQL 15
#    with exactly the GRANTs of the README ("Running a fleet"): the tables
#    belong to an owner role app, repl logs in with a password (scram, the
#    node's pg_hba.conf asks for it) and has SELECT/INSERT/UPDATE/DELETE/
#    TRIGGER on the tables, membership in app, CREATE on the database and SET
#    on session_replication_role: add database (password to the secrets
#    file), add all tables (capture installed by repl), add sync, partition
#    sequences, validate (all checks passed), runs both ways with inserts,
#    updates, deletes and a conflict, written by the application's own role
#    (only SELECT/INSERT/UPDATE/DELETE on its tables, USAGE on their
#    sequences: capture's trigger runs as the role that installed it);
#    compare; the coordinator;
#  - validate names a missing grant: with SET ON PARAMETER
#    session_replication_role revoked it reports it with the GRANT to run,
#    and passes again after the GRANT;
#  - TLS: against a server with ssl = on and a certificate for 127.0.0.1
#    from a throw-away CA, where the role may only connect over SSL,
#    `add database ... sslmode=verify-full sslrootcert=CA` works; with
#    another CA it is refused with libpq's reason and a hint, and nothing is
#    recorded;
#  - the node password is never shown: not in any output of any repctl
#    command this test runs (list, status, status --json, validate,
#    conflicts, compare, run, errors of a wrong password and of a node that
#    is down), not in the coordinator's log, not in the metadata tables nor
#    in the repctl schema on the nodes; it is only in the secrets file (mode
#    0600).
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
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/fleet.sh"

PW='Tr0ub4dor-x9Q7-repl-secret'
APP_PW='app-writer-pw-5521'

# Every output of every repctl command run here, for the password check.
ALL_OUT=$TEST_TMP/all-output.txt
: >"$ALL_OUT"
eval "_privs_run_repctl() $(declare -f run_repctl | tail -n +2)"
run_repctl() {
	_privs_run_repctl "$@"
	printf '%s\n%s\n' "$OUT" "$ERR" >>"$ALL_OUT"
}

pg_start meta
fx_env meta
fx_install

# The node as the archive guide's step 1 prepares it (README, "Running a
# fleet"): tables owned by app, the replication role repl with the grants.
prepare_node() {
	local n=$1 dd
	pg_start "$n"
	pg_createdb "$n" archive
	pg_psql "$n" archive -q <<-SQL
		CREATE EXTENSION IF NOT EXISTS pgcrypto;
		CREATE ROLE app NOLOGIN;
		CREATE ROLE rails LOGIN PASSWORD '$APP_PW';
		CREATE ROLE repl LOGIN PASSWORD '$PW';
		GRANT ALL ON SCHEMA public TO app;
		SET ROLE app;
		$(grep -v 'CREATE EXTENSION' <<<"$FLEET_SCHEMA_SQL")
		RESET ROLE;
		GRANT SELECT, INSERT, UPDATE, DELETE, TRIGGER ON ALL TABLES IN SCHEMA public TO repl;
		GRANT app TO repl;
		GRANT CREATE ON DATABASE archive TO repl;
		GRANT SET ON PARAMETER session_replication_role TO repl;
		-- the application's role: its tables' rows and ids, nothing more
		GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO rails;
		GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO rails;
	SQL
	# repl and rails must give their password (the harness's trust line follows)
	dd=$(pg_datadir "$n")
	{
		echo "host all repl 127.0.0.1/32 scram-sha-256"
		echo "host all rails 127.0.0.1/32 scram-sha-256"
		cat "$dd/pg_hba.conf"
	} >"$TEST_TMP/hba" && cat "$TEST_TMP/hba" >"$dd/pg_hba.conf"
	pg_sql "$n" postgres "SELECT pg_reload_conf()" >/dev/null
}
prepare_node a
prepare_node b

# as_app NODE SQL: the application writes, as its own non-superuser role
as_app() {
	PGPASSWORD=$APP_PW "$PG_BIN/psql" -X -A -t -q -v ON_ERROR_STOP=1 \
		-d "host=127.0.0.1 port=$(pg_port "$1") user=rails dbname=archive" -c "$2"
}
# as postgres, for checks
q() { pg_sql "$1" archive "$2"; }

fails "$PG_BIN/psql" -X -w -d "host=127.0.0.1 port=$(pg_port a) user=repl dbname=archive" -c 'SELECT 1'
is "$(q a "SELECT rolsuper FROM pg_roles WHERE rolname = 'repl'")" f "repl is not a superuser"

# ---- the replication role, end to end --------------------------------------------------------
for n in a b; do
	run_repctl add database $n dbname=archive host=127.0.0.1 port="$(pg_port $n)" user=repl pass="$PW"
	is "$RC" 0 "add database $n as repl with a password"
	[[ $RC == 0 ]] || diag "$ERR"
	like "$OUT" "password stored in the secrets file" "... stored in the secrets file"
done
run_repctl add database bad dbname=archive host=127.0.0.1 port="$(pg_port a)" user=repl pass=not-the-password
is "$RC" 1 "a wrong password is refused"
like "$ERR" "password authentication failed" "... with the server's reason"
run_repctl list databases
unlike "$OUT" "^bad " "... and the node is not recorded"
for n in a b; do
	run_repctl add all tables --herd=h --db=$n
	is "$RC" 0 "add all tables on $n, installed by repl"
	[[ $RC == 0 ]] || diag "$ERR"
done
is "$(q a "SELECT nspowner::regrole FROM pg_namespace WHERE nspname = 'repctl'")" repl \
	"schema repctl on a belongs to repl"
run_repctl add sync ab herd=h dbs=a:source,b:target
is "$RC" 0 "add sync ab"
run_repctl add sync ba herd=h dbs=b:source,a:target
is "$RC" 0 "add sync ba"
run_repctl partition sequences ab
is "$RC" 0 "partition sequences as repl (member of the owner app)"
[[ $RC == 0 ]] || diag "$ERR"
run_repctl validate
is "$RC" 0 "validate: all checks passed with exactly the README's grants"
[[ $RC == 0 ]] || diag "$OUT"

ok as_app a "INSERT INTO users (email) SELECT 'a' || g FROM generate_series(1, 20) g"
ok as_app b "INSERT INTO users (email) SELECT 'b' || g FROM generate_series(1, 20) g"
ok as_app a "INSERT INTO parents (name) VALUES ('p1'); INSERT INTO children (parent_id, name) SELECT id, 'c' FROM parents"
ok as_app b "INSERT INTO events (name) VALUES ('from b'); INSERT INTO settings VALUES ('k', 'v', now())"
repl_run ab
is "$RUN_RC" 0 "run ab as repl"
repl_run ba
is "$RUN_RC" 0 "run ba as repl"
for t in users parents children events settings; do
	is "$(q b "SELECT count(*) FROM $t")" "$(q a "SELECT count(*) FROM $t")" "$t: same row count on both"
done
is "$(q a "SELECT count(*) FROM users")" 40 "40 users on both nodes"
ok as_app a "UPDATE settings SET value = 'from a', updated_at = now() WHERE key = 'k'"
ok as_app b "UPDATE settings SET value = 'from b', updated_at = now() + interval '1 second' WHERE key = 'k'"
ok as_app a "DELETE FROM users WHERE email = 'b1'"
repl_run ab
repl_run ba
repl_run ab
is "$(q a "SELECT value FROM settings WHERE key = 'k'")/$(q b "SELECT value FROM settings WHERE key = 'k'")" \
	"from b/from b" "an update/update conflict decided the same on both"
is "$(q b "SELECT count(*) FROM users WHERE email = 'b1'")" 0 "a delete replicated"
run_repctl compare ab
is "$RC" 0 "compare as repl: equal"
run_repctl conflicts
like "$OUT" "public.settings" "the conflict is logged"
run_repctl conflicts --json
run_repctl list databases
run_repctl list databases --json
run_repctl list syncs
run_repctl status
run_repctl status --json
is "$RC" 0 "status --json"

repl_config 'sync_interval = 1;'
repl_start
ok as_app a "INSERT INTO users (email) VALUES ('through the coordinator')"
arrived() { [[ $(q b "SELECT count(*) FROM users WHERE email = 'through the coordinator'") == 1 ]]; }
ok wait_until 30 arrived
run_repctl kick ab --wait
run_repctl status
run_repctl stop
is "$RC" 0 "repctl stop"

# ---- validate names a missing grant ---------------------------------------------------------
q b "REVOKE SET ON PARAMETER session_replication_role FROM repl"
run_repctl validate
is "$RC" 1 "validate: exit 1 without SET ON PARAMETER session_replication_role"
like "$OUT" "problem: node 'b': the replication user may not set session_replication_role" \
	"... names the node and the missing privilege"
like "$OUT" "hint: GRANT SET ON PARAMETER session_replication_role TO " "... with the GRANT"
unlike "$OUT" "node 'a': the replication user" "... and nothing on a"
ok as_app a "UPDATE users SET email = 'changed' WHERE email = 'a1'"
repl_run ab
is "$RUN_RC" 1 "... and a run towards b does fail"
like "$RUN_ERR" "session_replication_role" "... on session_replication_role"
q b "GRANT SET ON PARAMETER session_replication_role TO repl"
run_repctl validate
is "$RC" 0 "validate passes again after the GRANT"
repl_run ab
is "$RUN_RC/$RUN_U" 0/1 "... and the run goes through"

# ---- errors of a node that is down ------------------------------------------------------------
pg_stop b
run_repctl status
run_repctl status --json
run_repctl validate
is "$RC" 1 "validate with b down: exit 1"
like "$OUT$ERR" "cannot connect to node 'b'" "... names b"
ok as_app a "UPDATE users SET email = 'changed while b is down' WHERE email = 'a2'"
run_repctl run ab
is "$RC" 1 "run ab with b down: exit 1"
run_repctl compare ab
is "$RC" 1 "compare with b down: exit 1"
run_repctl update database b port=1
is "$RC" 1 "update database b to a closed port: refused"
pg_start b

# ---- TLS -----------------------------------------------------------------------------------------
tls=$TEST_TMP/tls
mkdir -p "$tls"
(
	cd "$tls"
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj '/CN=repctl test CA' \
		-keyout ca.key -out ca.pem
	openssl req -newkey rsa:2048 -nodes -subj '/CN=127.0.0.1' -keyout server.key -out server.csr
	printf 'subjectAltName = IP:127.0.0.1\n' >san.ext
	openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
		-extfile san.ext -out server.crt
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj '/CN=some other CA' \
		-keyout wrong-ca.key -out wrong-ca.pem
) >"$TEST_TMP/openssl.log" 2>&1
ok test -s "$tls/server.crt"
pg_start tls
dd=$(pg_datadir tls)
cp "$tls/server.crt" "$tls/server.key" "$dd/"
chmod 600 "$dd/server.key"
if ((EUID == 0)); then chown "$PG_OS_USER:" "$dd/server.crt" "$dd/server.key"; fi
printf "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n" >>"$dd/postgresql.conf"
{
	echo "hostssl all tlsuser 127.0.0.1/32 trust"
	echo "hostnossl all tlsuser 127.0.0.1/32 reject"
	cat "$dd/pg_hba.conf"
} >"$TEST_TMP/hba" && cat "$TEST_TMP/hba" >"$dd/pg_hba.conf"
pg_restart tls
pg_sql tls postgres "CREATE ROLE tlsuser LOGIN SUPERUSER" >/dev/null
is "$(pg_sql tls postgres 'SHOW ssl')" on "the TLS node runs with ssl = on"
PT=$(pg_port tls)
run_repctl add database tnode dbname=postgres host=127.0.0.1 port="$PT" user=tlsuser sslmode=disable
is "$RC" 1 "without TLS the node refuses the role (hostnossl reject)"
run_repctl add database tnode dbname=postgres host=127.0.0.1 port="$PT" user=tlsuser \
	sslmode=verify-full sslrootcert="$tls/wrong-ca.pem"
is "$RC" 1 "verify-full with the wrong CA: refused"
like "$ERR" "certificate verify failed" "... with libpq's reason"
like "$ERR" "hint: check sslmode= and the certificate settings" "... and a hint"
run_repctl list databases
unlike "$OUT" "tnode" "... and nothing recorded"
run_repctl add database tnode dbname=postgres host=127.0.0.1 port="$PT" user=tlsuser \
	sslmode=verify-full sslrootcert="$tls/ca.pem"
is "$RC" 0 "add database with sslmode=verify-full sslrootcert=CA works"
[[ $RC == 0 ]] || diag "$ERR"
run_repctl list databases
like "$OUT" "tnode .*sslmode=verify-full" "the node keeps sslmode=verify-full"
run_repctl update database tnode sslrootcert="$tls/wrong-ca.pem"
is "$RC" 1 "update database to the wrong CA: refused (checked before it is stored)"

# ---- the password is never shown -----------------------------------------------------------------
secrets=$REPCTL_STATE_DIR/secrets
ok grep -qF -- "$PW" "$secrets"
is "$(stat -c %a "$secrets")" 600 "the secrets file has mode 0600"
note "checked $(wc -l <"$ALL_OUT") lines of repctl output"
ok test "$(wc -l <"$ALL_OUT")" -gt 100
fails grep -F -- "$PW" "$ALL_OUT"
fails grep -F -- "$PW" "$REPCTL_STATE_DIR/repctl.log"
ok test -s "$REPCTL_STATE_DIR/repctl.log"
meta_dump=$(meta_snapshot)
ok test "${#meta_dump}" -gt 1000
lacks_str "$meta_dump" "$PW" "the password is not in the metadata tables"
for n in a b; do
	node_dump=$(q $n "SELECT string_agg(t::text, ' ') FROM repctl.captured t")
	lacks_str "$node_dump" "$PW" "the password is not in the repctl schema on $n"
done
lacks_str "$(pg_sql meta postgres "SELECT string_agg(conninfo, ' ') FROM repctl.node")" "$PW" \
	"conninfo holds no password"

done_testing
