#!/usr/bin/env bash
# t_client_kit.sh - repctl client-kit NAME: the files a client's operator
# needs before the primary onboards it.
#
# Proves:
#  - the kit is written to --out DIR: docker-compose.yml (valid YAML,
#    postgres:15 and the agent's SSH endpoint), .env (0600, the password),
#    initdb/10-repctl.sh, pg_hba.conf.add, authorized_keys (0600), repctl.conf
#    (which repctl loads), README.txt (the onboard command) and the repctl
#    binary (it runs);
#  - the coordinator's SSH key is created when missing, and authorized_keys
#    holds it restricted: restrict,command="repctl agent --root=/music";
#  - the pg_hba.conf line names the database, the user and the coordinator's
#    address: from= as given; else as the client's PostgreSQL sees the
#    coordinator (inet_client_addr() of a registered node); else the local
#    address routing to host=; with none of them it refuses, writing
#    nothing;
#  - the initdb script, run as PostgreSQL's image would run it on a real
#    cluster, puts that line first in pg_hba.conf (PostgreSQL parses it:
#    pg_hba_file_rules) and creates the replication role with its grants;
#  - existing files are not overwritten without --force (nothing is written,
#    not even the missing ones); --force rewrites them and keeps the key.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/common.sh"
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/pg.sh"
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/fixtures.sh"

DB=archive_production
pg_start meta
pg_start kitpg
fx_env meta
REPCTL_NODE=cavaforgepad
export REPCTL_NODE
fx_install
pg_createdb meta "$DB"
run_repctl add database cavaforgepad dbname=$DB host=127.0.0.1 port="$(pg_port meta)" user=postgres
is "$RC" 0 "add database cavaforgepad"
KEY=$REPCTL_STATE_DIR/ssh/id_ed25519
ok test ! -e "$KEY"

K=$TEST_TMP/kit2
FILES=(docker-compose.yml Dockerfile .dockerignore agent-entrypoint.sh secrets/postgres_password .env
	initdb/10-repctl.sh pg_hba.conf.add authorized_keys repctl.conf README.txt repctl)
sums() { (cd "$K" && sha256sum "${FILES[@]}" 2>&1 || true); }
HAVE_YAML=0
python3 -c 'import yaml' 2>/dev/null && HAVE_YAML=1
yaml() { # FILE EXPR: print python EXPR on the parsed file (as d)
	python3 -c 'import sys, yaml; d = yaml.safe_load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# ---- the kit: the project's docker/client/docker-compose.yml, compiled in -----------------
run_repctl client-kit client2 --out "$K" from=10.8.0.1 host=10.8.0.5
is "$RC" 0 "client-kit client2 --out DIR from=10.8.0.1 (stderr: $ERR)"
like "$OUT" "based on the project's docker/client/docker-compose.yml, compiled in" "the kit is based on the project's client compose file"
for f in "${FILES[@]}"; do
	ok test -s "$K/$f"
done
like "$OUT" "created the coordinator's SSH key $KEY" "the missing key is created and said so"
ok test -s "$KEY.pub"
is "$(cat "$K/authorized_keys")" "restrict,command=\"repctl agent --root=/music\" $(cat "$KEY.pub")" \
	"authorized_keys: the coordinator's key, restricted to the agent confined to /music"
is "$(stat -c %a "$K/authorized_keys") $(stat -c %a "$K/.env") $(stat -c %a "$K/secrets") $(stat -c %a "$K/secrets/postgres_password") $(stat -c %a "$K/initdb/10-repctl.sh") $(stat -c %a "$K/repctl") $(stat -c %a "$K/agent-entrypoint.sh")" \
	"600 600 700 644 755 755 755" \
	"modes: authorized_keys and .env private, secrets/ 0700 (its file readable by postgres inside), the script, binary and entrypoint executable"
LINE="host $DB postgres 10.8.0.1/32 scram-sha-256"
is "$(grep -v '^#' "$K/pg_hba.conf.add")" "$LINE" "pg_hba.conf.add: the line for the coordinator at from="
has_str "$OUT" "$LINE" "the line is printed too"
has_str "$(cat "$K/initdb/10-repctl.sh")" "$LINE" "the initdb script carries the line"
ok sh -n "$K/initdb/10-repctl.sh"
like "$(cat "$K/secrets/postgres_password")" "^[0-9a-f]{32}$" "secrets/postgres_password: a generated password"
like "$(cat "$K/.env")" "REPCTL_VPN_ADDRESS=10.8.0.5" ".env: the client's VPN address (host=)"
is "$(cat "$K/agent-entrypoint.sh")" "$(cat "$ROOT/docker/agent-entrypoint.sh")" "the project's agent entrypoint"
# every COPY source of the kit's Dockerfile is in the kit
for src in $(awk '$1 == "COPY" { print $2 }' "$K/Dockerfile"); do
	ok test -e "$K/$src"
done
if ((HAVE_YAML)); then
	is "$(yaml "$K/docker-compose.yml" 'd["services"]["db"]["image"]')" "postgres:15" "docker-compose.yml: postgres:15"
	is "$(yaml "$K/docker-compose.yml" 'd["services"]["db"]["environment"]["POSTGRES_DB"]')" "$DB" "... creates the database"
	has_str "$(yaml "$K/docker-compose.yml" 'd["services"]["db"]["volumes"]')" "./initdb:/docker-entrypoint-initdb.d:ro" "... with initdb/"
	is "$(yaml "$K/docker-compose.yml" 'd["services"]["agent"]["build"]["context"] + " " + d["services"]["agent"]["build"]["dockerfile"] + " " + d["services"]["agent"]["build"]["target"]')" \
		". Dockerfile agent" "... the agent is built from the kit"
	has_str "$(yaml "$K/docker-compose.yml" 'd["services"]["agent"]["volumes"]')" "./authorized_keys:/etc/repctl/authorized_keys:ro" "... and gets authorized_keys"
	is "$(yaml "$K/docker-compose.yml" 'd["secrets"]["postgres_password"]["file"]')" "./secrets/postgres_password" "... the password from secrets/"
else
	note "python3 yaml is not installed: docker-compose.yml is not parsed"
fi
unlike "$(cat "$K/docker-compose.yml")" "context: \\.\\.|docker/Dockerfile" "nothing refers to the source tree any more"
compose_ok() { # DIR: docker-compose parses the kit's compose file with the kit's .env
	(cd "$1" && env -u REPCTL_META -u REPCTL_STATE_DIR -u REPCTL_NODE docker-compose config) \
		>"$1.compose.out" 2>&1
}
if command -v docker-compose >/dev/null 2>&1; then
	ok compose_ok "$K"
	like "$(cat "$K.compose.out")" "10.8.0.5:5432:5432" "docker-compose config: PostgreSQL on the VPN address from .env"
else
	note "docker-compose is not installed: the compose file is not checked with it"
fi
RC=0
OUT=$(env -u REPCTL_NODE -u REPCTL_META -u REPCTL_STATE_DIR "$REPCTL" -c "$K/repctl.conf" config 2>&1) || RC=$?
is "$RC" 0 "repctl loads the kit's repctl.conf"
like "$OUT" 'node = "client2"' "... which names the client"
is "$("$K/repctl" version)" "$("$REPCTL" version)" "the kit's repctl binary runs"
has_str "$(cat "$K/README.txt")" "docker compose up -d --build" "README.txt: the client's command"
has_str "$(cat "$K/README.txt")" "repctl onboard client2 host=CLIENT_ADDRESS port=5432 dbname=$DB user=postgres pass=PASSWORD ssh=repctl@CLIENT_ADDRESS:2222 --from cavaforgepad --accept-host-key=SHA256:..." \
	"README.txt: the primary's onboard command (no folder yet: no --folder)"
has_str "$(cat "$K/README.txt")" "repctl add folder music nodes=cavaforgepad:/music,client2:/music" \
	"README.txt: ... then the folder, for the first client"

# ---- the same kit from a repctl outside the checkout (compiled in) ----------------------
mkdir -p "$TEST_TMP/bin"
cp "$REPCTL" "$TEST_TMP/bin/repctl"
KS=$TEST_TMP/kit-self
RC=0
OUT=$("$TEST_TMP/bin/repctl" client-kit client9 --out "$KS" from=10.8.0.1 host=10.8.0.9 2>&1) || RC=$?
is "$RC" 0 "a repctl outside the checkout writes a kit ($OUT)"
like "$OUT" "based on the project's docker/client/docker-compose.yml, compiled in" "... the same, compiled in"
for f in "${FILES[@]}"; do
	ok test -s "$KS/$f"
done
is "$(grep -v '^#' "$KS/docker-compose.yml")" "$(grep -v '^#' "$K/docker-compose.yml")" "docker-compose.yml: the same as from the checkout"
is "$(cat "$KS/Dockerfile")" "$(cat "$K/Dockerfile")" "Dockerfile: the same"
is "$(cat "$KS/agent-entrypoint.sh")" "$(cat "$ROOT/docker/agent-entrypoint.sh")" "agent-entrypoint.sh: the project's"
has_str "$(cat "$KS/README.txt")" "ssh=repctl@CLIENT_ADDRESS:2222" "README.txt: the agent's user repctl, never root"
if command -v docker-compose >/dev/null 2>&1; then
	ok compose_ok "$KS"
	like "$(cat "$KS.compose.out")" "10.8.0.9:5432:5432" "docker-compose config: PostgreSQL on the VPN address only"
	like "$(cat "$KS.compose.out")" "10.8.0.9:2222:2222" "docker-compose config: SSH on the VPN address only"
fi

# ---- the initdb script on a real cluster, as the postgres image runs it -----------------
run_init() { # the image runs the script as the cluster owner, with these variables
	_pg_as_user env PGDATA="$(pg_datadir kitpg)" POSTGRES_USER=postgres POSTGRES_DB=$DB \
		REPCTL_DB_USER="$1" REPCTL_DB_PASSWORD="$2" PGHOST=127.0.0.1 PGPORT="$(pg_port kitpg)" \
		PATH="$PG_BIN:$PATH" sh "$3"
}
K3=$TEST_TMP/kit3
run_repctl client-kit client3 --out "$K3" from=10.8.0.1 user=repctl pass=s3cret
is "$RC" 0 "client-kit with user=repctl pass=..."
has_str "$(cat "$K3/.env")" $'REPCTL_DB_USER=repctl\nREPCTL_DB_PASSWORD=s3cret' ".env: the replication role and its password"
ok run_init repctl s3cret "$K3/initdb/10-repctl.sh"
is "$(pg_sql kitpg postgres "SELECT count(*) FROM pg_database WHERE datname = '$DB'")" 1 "the script creates the database"
pg_sql kitpg postgres "SELECT pg_reload_conf()" >/dev/null
is "$(pg_sql kitpg postgres "SELECT line_number || ' ' || type || ' ' || array_to_string(database, ',') || ' ' || array_to_string(user_name, ',') || ' ' || address || ' ' || netmask || ' ' || auth_method || ' ' || coalesce(error, 'ok') FROM pg_hba_file_rules ORDER BY line_number LIMIT 1")" \
	"2 host $DB repctl 10.8.0.1 255.255.255.255 scram-sha-256 ok" \
	"PostgreSQL reads the line, first in pg_hba.conf"
is "$(pg_sql kitpg postgres "SELECT rolcanlogin FROM pg_roles WHERE rolname = 'repctl'")" t "the role repctl can log in"
is "$(pg_sql kitpg postgres "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '$DB'")" repctl \
	"it owns the database (so it can create the tables and the schema repctl)"
is "$(pg_sql kitpg postgres "SELECT has_parameter_privilege('repctl', 'session_replication_role', 'SET')")" t \
	"it may SET session_replication_role"

# ---- where the coordinator's address comes from -----------------------------------------
run_repctl add database client4 dbname=postgres host=127.0.0.1 port="$(pg_port kitpg)" user=postgres
is "$RC" 0 "add database client4"
run_repctl client-kit client4 --out "$TEST_TMP/kit4"
is "$RC" 0 "client-kit of a registered node, without from="
is "$(grep -v '^#' "$TEST_TMP/kit4/pg_hba.conf.add")" "host $DB postgres 127.0.0.1/32 scram-sha-256" \
	"the address as the client sees the coordinator"
like "$OUT" "inet_client_addr" "... and where it comes from"
run_repctl client-kit client5 --out "$TEST_TMP/kit5" host=127.0.0.1 dbname=music_db
is "$RC" 0 "client-kit with host= (the client's address)"
is "$(grep -v '^#' "$TEST_TMP/kit5/pg_hba.conf.add")" "host music_db postgres 127.0.0.1/32 scram-sha-256" \
	"the local address that routes to host=, and dbname="
run_repctl client-kit client6 --out "$TEST_TMP/kit6"
rc_nonzero "no from=, no node, no host=: refused"
like "$ERR" "give from=ADDRESS" "... saying what to give"
ok test ! -e "$TEST_TMP/kit6"

# ---- no overwrite without --force -------------------------------------------------------
before=$(sums)
key_before=$(sha256sum <"$KEY")
run_repctl client-kit client2 --out "$K" from=10.8.0.9
rc_nonzero "a second kit into the same directory is refused"
like "$ERR" "exist already; nothing was written" "... saying nothing was written"
has_str "$ERR" "$K/docker-compose.yml" "... naming the files"
like "$ERR" "--force" "... and how to overwrite"
is "$(sums)" "$before" "the files are unchanged"
rm "$K/README.txt"
run_repctl client-kit client2 --out "$K" from=10.8.0.9
rc_nonzero "refused while any file exists"
ok test ! -e "$K/README.txt"
run_repctl client-kit client2 --out "$K" from=10.8.0.9 --force
is "$RC" 0 "--force overwrites"
is "$(grep -v '^#' "$K/pg_hba.conf.add")" "host $DB postgres 10.8.0.9/32 scram-sha-256" "the new line is written"
ok test -s "$K/README.txt"
is "$(sha256sum <"$KEY")" "$key_before" "the existing key is kept"
done_testing
