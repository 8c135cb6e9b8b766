#!/usr/bin/env bash
# tests/integration/t_nodes.sh - add / update / list / remove database (nodes).
#
# Proves:
#  - add database works with separate keys and with a whole conn= string
#    (keyword form and URI form); list databases shows both;
#  - refused, each with a specific what+how message on stderr, a non-zero
#    exit and the metadata untouched: a duplicate name, bad names, a closed
#    port ("Connection refused" + hint), a database that does not exist, a
#    malformed conn= ("host=x port", an unknown keyword foo=bar), an unknown
#    option, no dbname at all;
#  - a database whose name contains "password" can be registered (the
#    metadata must not reject it just for the word);
#  - passwords, against a node requiring scram-sha-256: no password and a
#    wrong pass= are refused with a password hint and write nothing; the right
#    pass= succeeds; the password lands in $REPCTL_STATE_DIR/secrets (mode
#    0600, pgpass-escaped) and nowhere else: not in a pg_dump of the metadata
#    database, nor in the output of add/list (text and --json)/status/
#    validate/update; later commands (add all tables, validate) connect with
#    it from the secrets file without it being given again; a password inside
#    conn= is split off the same way;
#  - update database: a bad port is refused and changes nothing;
#    status=inactive works and list shows it; bad status / unknown node refused;
#  - remove database is refused while a sync uses the node; after remove sync
#    it works, the row (and its table registrations) are gone, and the
#    password is dropped from the secrets file once no node uses it.
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
fx_rails_db A secure
fx_rails_db B app
pg_createdb A password_vault
PA=$(pg_port A)
PB=$(pg_port B)
fx_closed_port
closed=$FX_CLOSED_PORT
fx_install

node_count() { pg_sql META postgres "SELECT count(*) FROM repctl.node WHERE name = '$1'"; }

# ---- adding nodes -----------------------------------------------------------------
run_repctl add database a dbname=app host=127.0.0.1 port="$PA" user=postgres
is "$RC" 0 "add database with separate keys"
like "$OUT" "node 'a' added: .*dbname=app" "... reports the node"
like "$OUT" "PostgreSQL 1[0-9]" "... and the server version"

run_repctl add database b conn="host=127.0.0.1 port=$PB user=postgres dbname=app"
is "$RC" 0 "add database with conn="
is "$(pg_sql META postgres "SELECT conninfo ~ 'dbname=app' AND conninfo ~ 'port=$PB' FROM repctl.node WHERE name = 'b'")" \
	t "conn= is stored as a conninfo with its dbname and port"

run_repctl add database u conn="postgresql://postgres@127.0.0.1:$PA/app"
is "$RC" 0 "add database with a conn= URI"

run_repctl list databases --json
is "$RC" 0 "list databases --json"
ok json_ok "$OUT"
is "$(json_eval "$OUT" "','.join(n['name'] for n in d)")" "a,b,u" "list shows the three nodes"
is "$(json_eval "$OUT" "[n['status'] for n in d if n['name'] == 'b'][0]")" active "new nodes are active"

# ---- refusals -----------------------------------------------------------------------
refused add database a dbname=app host=127.0.0.1 port="$PB" user=postgres
like "$ERR" "node 'a' already exists" "duplicate name: says so"
like "$ERR" "update database a" "duplicate name: hints at update database"

for bad in 'bad name' '9lives' 'semi;colon' "$(printf 'x%.0s' {1..64})"; do
	refused add database "$bad" dbname=app host=127.0.0.1 port="$PA" user=postgres
	like "$ERR" "is not a valid node name: use letters, digits" "bad name '${bad:0:12}': says what a name may be"
done

refused add database c dbname=app host=127.0.0.1 port="$closed" user=postgres
like "$ERR" "cannot connect to node 'c'" "closed port: names the node"
like "$ERR" "port=$closed" "closed port: shows the port"
like "$ERR" "Connection refused" "closed port: says Connection refused"
like "$ERR" "^hint: is PostgreSQL running" "closed port: hint"
like "$ERR" "nothing was changed" "closed port: says nothing changed"

refused add database c dbname=nosuchdb host=127.0.0.1 port="$PA" user=postgres
like "$ERR" 'database "nosuchdb" does not exist' "wrong dbname: the server's reason"
like "$ERR" '^hint: check dbname=' "wrong dbname: hint"

refused add database c conn="host=x port"
like "$ERR" 'invalid connection string in conn=' "conn='host=x port': says conn= is invalid"
like "$ERR" 'missing "=" after "port"' "conn='host=x port': says where"

refused add database c conn="foo=bar"
like "$ERR" 'invalid connection string in conn=.*invalid connection option "foo"' \
	"conn='foo=bar': names the unknown keyword"

refused add database c dbname=app host=127.0.0.1 port="$PA" user=postgres foo=bar
is "$RC" 2 "unknown option foo=bar: usage error (exit 2)"
like "$ERR" "unknown option 'foo' for 'add database'; valid options: dbname=, host=, port=" \
	"unknown option: names it and lists the valid ones"

refused add database c host=127.0.0.1 port="$PA" user=postgres
like "$ERR" 'no database given; add dbname=' "missing dbname: says so and how to fix"
refused add database c conn="host=127.0.0.1 port=$PA user=postgres"
like "$ERR" 'no database given; add dbname=' "missing dbname in conn=: says so"

# A database (or user) name is not a password.
run_repctl add database pv dbname=password_vault host=127.0.0.1 port="$PA" user=postgres
is "$RC" 0 "a database named password_vault can be registered"
is "$ERR" "" "... without an error"
is "$(node_count pv)" 1 "... and is recorded"

# ---- passwords --------------------------------------------------------------------
PW="Pa:ss\\wo rd#1'q" # ':' and '\' must be escaped in a pgpass file
FRAG='wo rd#1'        # a distinctive piece of it, for grepping
WRONG='WrongHorse42'
pg_sql A postgres "ALTER ROLE postgres PASSWORD '${PW//\'/\'\'}'"
hba=$(pg_datadir A)/pg_hba.conf
{
	echo "host secure all 127.0.0.1/32 scram-sha-256"
	cat "$hba"
} >"$TEST_TMP/hba.new"
cat "$TEST_TMP/hba.new" >"$hba" # keep the file's owner and mode
pg_sql A postgres 'SELECT pg_reload_conf()' >/dev/null
# shellcheck disable=SC2317 # called through wait_until
secure_needs_password() { ! PGPASSWORD=$WRONG pg_sql A secure 'SELECT 1' >/dev/null 2>&1; }
ok wait_until 10 secure_needs_password
is "$(PGPASSWORD=$PW pg_sql A secure 'SELECT 1')" 1 "database secure takes the password"

refused add database s dbname=secure host=127.0.0.1 port="$PA" user=postgres
like "$ERR" 'no password supplied' "no password: the server's reason"
like "$ERR" '^hint: give the password with pass=' "no password: hint"

refused add database s dbname=secure host=127.0.0.1 port="$PA" user=postgres pass="$WRONG"
like "$ERR" 'password authentication failed' "wrong password: the server's reason"
like "$ERR" '^hint: check the password \(pass=\)' "wrong password: hint"
lacks_str "$ERR" "$WRONG" "wrong password: not echoed"
ok test ! -e "$REPCTL_STATE_DIR/secrets"

run_repctl add database s dbname=secure host=127.0.0.1 port="$PA" user=postgres pass="$PW"
is "$RC" 0 "right pass= succeeds"
like "$OUT" 'password stored in the secrets file' "... and says where the password went"
seen=$OUT$ERR

secrets=$REPCTL_STATE_DIR/secrets
ok test -f "$secrets"
is "$(stat -c %a "$secrets")" 600 "secrets file is mode 0600"
is "$(stat -c %a "$REPCTL_STATE_DIR")" 700 "state directory is mode 0700"
esc=${PW//\\/\\\\}
esc=${esc//:/\\:}
is "$(grep -c . "$secrets")" 1 "secrets file has one line"
is "$(<"$secrets")" "127.0.0.1:$PA:secure:postgres:$esc" "secrets line: host:port:db:user:escaped password"
is "$(pg_sql META postgres "SELECT has_secret FROM repctl.node WHERE name = 's'")" t \
	"metadata records only that a secret exists"

# Later commands get the password from the secrets file.
run_repctl add all tables --herd=sh --db=s
is "$RC" 0 "add all tables on the password node works without pass="
like "$OUT" "6 table\(s\) added" "... and registered its tables"
seen+=$OUT$ERR
run_repctl add all tables --herd=sh --db=a
is "$RC" 0 "add all tables on node a"
run_repctl add sync ssync herd=sh dbs=s:source,a:target
is "$RC" 0 "add sync using the password node"
seen+=$OUT$ERR

for cmd in "list databases" "list databases --json" "list tables" "list syncs --json" \
	"status" "status --json" "validate"; do
	# shellcheck disable=SC2086 # word splitting of cmd is wanted
	run_repctl $cmd
	is "$RC" 0 "$cmd works"
	seen+=$OUT$ERR
	lacks_str "$OUT$ERR" "$FRAG" "$cmd: no password in the output"
done
run_repctl list databases --json
is "$(json_eval "$OUT" "[n['password'] for n in d if n['name'] == 's'][0]")" 'secrets file' \
	"list databases says the password is in the secrets file"

run_repctl validate ssync
is "$RC" 0 "validate connects to the password node with the stored password"
like "$OUT" 'all checks passed' "... and passes"
seen+=$OUT$ERR

# Bucardo's spelling password= on update, and a password inside conn=.
run_repctl update database s password="$PW"
is "$RC" 0 "update database password= (Bucardo spelling) works"
seen+=$OUT$ERR
cpw=${PW//\\/\\\\}
cpw=${cpw//\'/\\\'}
run_repctl add database s2 conn="host=127.0.0.1 port=$PA user=postgres dbname=secure password='$cpw'"
is "$RC" 0 "add database with the password inside conn="
seen+=$OUT$ERR
is "$(pg_sql META postgres "SELECT conninfo !~* 'password' FROM repctl.node WHERE name = 's2'")" t \
	"the password was split off conn="
is "$(<"$secrets")" "127.0.0.1:$PA:secure:postgres:$esc" "secrets file still has exactly the one line"

lacks_str "$seen" "$FRAG" "no command printed the password"
dump=$("$PG_BIN/pg_dump" -d "$(pg_conninfo META postgres)")
like "$dump" 'CREATE TABLE repctl.node' "pg_dump of the metadata database has the repctl schema"
has_str "$dump" "dbname=secure" "... and the node rows"
lacks_str "$dump" "$FRAG" "the password is nowhere in a pg_dump of the metadata database"
lacks_str "$dump" "${esc:0:8}" "... not even pgpass-escaped"
lacks_str "$(meta_snapshot)" "$FRAG" "... nor in any repctl.* row"

# ---- update database -------------------------------------------------------------
refused update database a port="$closed"
like "$ERR" "cannot connect to node 'a'" "update to a closed port: refused naming the node"
like "$ERR" 'Connection refused' "... says why"
like "$ERR" 'nothing was changed' "... says nothing changed"

refused update database a status=bogus
like "$ERR" "status must be active or inactive, not 'bogus'" "bad status: says the valid ones"
refused update database nosuch status=inactive
like "$ERR" "no node 'nosuch'" "update of an unknown node: says so"
like "$ERR" "list databases" "... hints at list databases"
refused update database a
like "$ERR" 'nothing to change' "update without key=value: says so"

run_repctl update database a status=inactive
is "$RC" 0 "update database status=inactive"
run_repctl list databases --json
is "$(json_eval "$OUT" "[n['status'] for n in d if n['name'] == 'a'][0]")" inactive \
	"list databases --json shows a inactive"
run_repctl list databases
like "$OUT" '^a +inactive ' "list databases shows a inactive"

# ---- remove database -------------------------------------------------------------
refused remove database s
like "$ERR" "node 's' is used by sync\(s\) ssync" "remove of a node in use: names the sync"
like "$ERR" 'remove sync' "... hints at remove sync"
refused remove database nosuch
like "$ERR" "no node 'nosuch'" "remove of an unknown node: says so"

run_repctl remove sync ssync
is "$RC" 0 "remove sync"
run_repctl remove database s
is "$RC" 0 "remove database once no sync uses it"
is "$(node_count s)" 0 "its row is gone"
is "$(pg_sql META postgres "SELECT count(*) FROM repctl.herd_table WHERE node = 's'")" 0 \
	"its table registrations are gone"
is "$(<"$secrets")" "127.0.0.1:$PA:secure:postgres:$esc" "the password stays while node s2 uses it"
run_repctl remove database s2
is "$RC" 0 "remove database s2"
is "$(grep -c . "$secrets" || true)" 0 "the password left the secrets file with the last node using it"

done_testing
