#!/usr/bin/env bash
# tests/integration/t_docker.sh - the Docker packaging (docker/) and the
# systemd unit, as far as they can be checked without a Docker engine
# (tests/docker/check.sh, `make check-docker`, runs them for real): the
# scripts run for real outside a container, against real clusters and a
# real sshd on loopback; the compose files go through docker-compose's
# parser; the Dockerfile is parsed and its build stage replayed.  Run as
# root (the agent part creates a user and runs sshd).
#
# Proves:
#  (a) docker/entrypoint.sh, as the image runs it: with the metadata role
#      made by docker/initdb/10-repctl.sh and password authentication, it
#      writes the password from REPCTL_META_PASSWORD_FILE into the secrets
#      file (pgpass escaping, mode 0600, one line however often it starts),
#      creates the state directory 0700, installs the schema, makes the SSH
#      key, and execs `repctl start --foreground` in its own process (the pid
#      file holds the entrypoint's pid) so that `status --health` reports
#      the coordinator up; SIGTERM stops it cleanly (exit 0, pid file gone);
#      a second start reinstalls nothing, starts over a stale pid file left
#      by a killed container (naming a live unrelated process, which is left
#      alone: only the lock a live coordinator holds counts); it waits for a metadata database that
#      comes up late, and gives up after REPCTL_WAIT_SECONDS with a message
#      naming what it waited for; a broken configuration or a bad
#      REPCTL_WAIT_SECONDS stop it at once; arguments run repctl instead;
#  (b) docker-compose (Debian's package; missing = failure) accepts both
#      compose files (docker/docker-compose.yml, docker/client/docker-compose.yml:
#      two directories, so two default project names), and the parsed result
#      has what the deployment needs
#      (healthchecks, depends_on service_healthy, restart policy, targets,
#      environment, volumes, ports on the VPN address only); the client
#      file refuses to work without REPCTL_VPN_ADDRESS;
#  (c) the Dockerfile: every COPY source exists; replaying the build stage
#      (its COPYs into a scratch directory, its make commands) builds and
#      installs repctl from exactly what is copied; every COPY --from=build
#      source is then produced; .dockerignore leaves every COPY source in
#      the context; ENTRYPOINT and HEALTHCHECK name the files
#      the stages install; the runtime packages provide every library the
#      binary needs; the HEALTHCHECK maps red (2) to Docker's unhealthy (1)
#      and keeps the line; the default target is the coordinator; and
#      `make install` puts the systemd unit in SYSTEMDDIR with BINDIR's
#      path (systemd-analyze verify accepts it), or not at all with
#      SYSTEMDDIR= as the Dockerfile does;
#  (d) docker/agent-entrypoint.sh: sshd on loopback for one unprivileged
#      user with a persistent host key whose fingerprint it prints; `repctl
#      trust` with that fingerprint and `sync folder` through it copy a
#      folder both ways, files written as that user; the key's own options
#      are replaced by restrict,command="repctl agent --root=..."; any other
#      command runs the agent instead; a folder outside the root is
#      refused; no key or no folder = a clear refusal to start.
# shellcheck disable=SC2317 # helpers are called through wait_until / cleanup
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/common.sh"
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/pg.sh"
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/fixtures.sh"

DOCKER=$ROOT/docker
ENTRY=$DOCKER/entrypoint.sh
AGENT_ENTRY=$DOCKER/agent-entrypoint.sh
mkdir -p "$TEST_TMP/san"
# sanitizer reports of repctl processes the scripts start (make SAN=1)
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$TEST_TMP/san/daemon"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$TEST_TMP/san/daemon-ub"
# no password from anywhere but the secrets file
export PGPASSFILE=$TEST_TMP/no-pgpass
unset PGPASSWORD REPCTL_CONFIG REPCTL_NODE

# stop_pid PID : SIGTERM, wait (it is our child), SIGKILL after 30 s
stop_pid() {
	local pid=$1 i
	pid_running "$pid" || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 300; i++)); do
		pid_running "$pid" || break
		sleep 0.1
	done
	pid_running "$pid" && kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null || true
}

# ep_start LOG [VAR=VALUE...] : the entrypoint in the background; EP_PID
ep_start() {
	local log=$1
	shift
	env "$@" sh "$ENTRY" >"$log" 2>&1 &
	EP_PID=$!
	cleanup_push stop_pid "$EP_PID"
	note "entrypoint pid $EP_PID, log $log"
}

# health_up PID : status --health says the coordinator PID is running
health_up() {
	local out rc=0
	out=$("$REPCTL" status --health 2>/dev/null) || rc=$?
	[[ $rc == 0 && $out == *"idle: coordinator running (pid $1 on "* ]]
}

log_has() { grep -qF -- "$2" "$1"; }

show_log() {
	echo "# ---- $1:"
	sed 's/^/#   /' "$1"
}

# =========================================================== (a) the entrypoint ==
pg_start dmeta
PORT=$(pg_port dmeta)
mkdir -m 700 "$TEST_TMP/secrets"
PW='s3cr:et\pw'
printf '%s\n' "$PW" >"$TEST_TMP/secrets/repctl_meta_password"

for i in 1 2; do
	rc=0
	out=$(PATH=$PG_BIN:$PATH PGHOST=127.0.0.1 PGPORT=$PORT POSTGRES_USER=postgres \
		POSTGRES_DB=postgres REPCTL_META_PASSWORD_FILE=$TEST_TMP/secrets/repctl_meta_password \
		sh "$DOCKER/initdb/10-repctl.sh" 2>&1) || rc=$?
	is "$rc" 0 "initdb/10-repctl.sh (run $i)"
	((rc == 0)) || note "$out"
done
is "$(pg_sql dmeta postgres "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'repctl'")" \
	repctl "database repctl exists, owned by repctl"
# password authentication for repctl, before the harness's trust lines
hba=$(pg_datadir dmeta)/pg_hba.conf
sed -i '1i host all repctl 127.0.0.1/32 scram-sha-256' "$hba"
pg_sql dmeta postgres "SELECT pg_reload_conf()" >/dev/null
fails "$PG_BIN/psql" -X -w -d "host=127.0.0.1 port=$PORT user=repctl dbname=repctl" -c 'SELECT 1'
ok env PGPASSWORD="$PW" "$PG_BIN/psql" -X -w -d "host=127.0.0.1 port=$PORT user=repctl dbname=repctl" -c 'SELECT 1'

STATE=$TEST_TMP/dstate
export REPCTL_META="host=127.0.0.1 port=$PORT user=repctl dbname=repctl"
export REPCTL_STATE_DIR=$STATE
EPENV=(PATH="$(dirname "$REPCTL"):$PATH" REPCTL_NODE=cavaforgepad
	REPCTL_META_PASSWORD_FILE="$TEST_TMP/secrets/repctl_meta_password" REPCTL_WAIT_SECONDS=30)

# ---- first start ----------------------------------------------------------------------
ep_start "$TEST_TMP/ep1.log" "${EPENV[@]}"
ep1=$EP_PID
if wait_until 60 health_up "$ep1"; then
	pass "status --health: the coordinator is up, in the entrypoint's own process (pid $ep1)"
else
	fail "status --health: the coordinator is up, in the entrypoint's own process (pid $ep1)"
	show_log "$TEST_TMP/ep1.log"
fi
is "$(cat "$STATE/repctl.pid" 2>/dev/null)" "$ep1" "the pid file holds the entrypoint's pid (exec)"
is "$(stat -c %a "$STATE")" 700 "state directory created with mode 0700"
is "$(stat -c %a "$STATE/secrets")" 600 "secrets file mode 0600"
is "$(cat "$STATE/secrets")" "127.0.0.1:$PORT:repctl:repctl:s3cr\\:et\\\\pw" \
	"the metadata password is in the secrets file, pgpass-escaped"
is "$(pg_sql dmeta repctl "SELECT to_regclass('repctl.schema_version') IS NOT NULL")" t \
	"the schema got installed in the metadata database"
is "$(pg_sql dmeta repctl "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'repctl.sync'::regclass")" \
	repctl "... as the role repctl (over password authentication)"
ok test -s "$STATE/ssh/id_ed25519.pub"
ok log_has "$TEST_TMP/ep1.log" "$(cut -d' ' -f2 "$STATE/ssh/id_ed25519.pub")"
ok log_has "$TEST_TMP/ep1.log" "docker-entrypoint: starting the coordinator"
ok log_has "$TEST_TMP/ep1.log" "installed metadata schema version"
run_repctl status
is "$RC" 0 "repctl status with the entrypoint's secrets"
like "$OUT" "coordinator: running \\(pid $ep1 on " "status shows the coordinator"

kill -TERM "$ep1"
rc=0
if wait_until 30 eval '! pid_running '"$ep1"; then
	wait "$ep1" || rc=$?
	is "$rc" 0 "SIGTERM: the coordinator exits 0"
else
	fail "SIGTERM: the coordinator exits within 30 s"
fi
ok log_has "$TEST_TMP/ep1.log" "coordinator stopped"
fails test -e "$STATE/repctl.pid"

# ---- second start: a stale pid file, install and keygen again ---------------------------
sleep 600 &
sleeper=$!
cleanup_push stop_pid "$sleeper"
echo "$sleeper" >"$STATE/repctl.pid"
ep_start "$TEST_TMP/ep2.log" "${EPENV[@]}"
ep2=$EP_PID
wait_until 60 health_up "$ep2" || show_log "$TEST_TMP/ep2.log"
ok health_up "$ep2"
is "$(head -n 1 "$STATE/repctl.pid" 2>/dev/null)" "$ep2" "the stale pid file now names the new coordinator"
ok log_has "$TEST_TMP/ep2.log" "nothing to do"
like "$(cat "$TEST_TMP/ep2.log")" "^exists $STATE/ssh/id_ed25519" "keygen keeps the key"
is "$(wc -l <"$STATE/secrets")" 1 "the secrets file still has one line for the metadata database"
ok pid_running "$sleeper"
stop_pid "$ep2"
stop_pid "$sleeper"

# ---- a metadata database that comes up late --------------------------------------------
pg_stop dmeta
ep_start "$TEST_TMP/ep3.log" "${EPENV[@]}" REPCTL_WAIT_SECONDS=90
ep3=$EP_PID
ok wait_until 20 log_has "$TEST_TMP/ep3.log" "waiting for the metadata database"
ok pid_running "$ep3"
pg_start dmeta
wait_until 60 health_up "$ep3" || show_log "$TEST_TMP/ep3.log"
ok health_up "$ep3"
stop_pid "$ep3"

# ---- giving up, refusing ---------------------------------------------------------------
fx_closed_port
t0=$EPOCHSECONDS
rc=0
out=$(env "${EPENV[@]}" REPCTL_WAIT_SECONDS=2 \
	REPCTL_META="host=127.0.0.1 port=$FX_CLOSED_PORT user=repctl dbname=repctl" \
	REPCTL_STATE_DIR="$TEST_TMP/dstate4" sh "$ENTRY" 2>&1) || rc=$?
is "$rc" 1 "no metadata database: the entrypoint gives up (exit 1)"
ok test $((EPOCHSECONDS - t0)) -le 20
like "$out" "gave up after 2s \\(REPCTL_WAIT_SECONDS\\) waiting for the metadata database \\(.*port=$FX_CLOSED_PORT" \
	"... saying what it waited for"
fails test -e "$TEST_TMP/dstate4/repctl.pid"

rc=0
out=$(env "${EPENV[@]}" REPCTL_CONFIG="$TEST_TMP/missing.conf" sh "$ENTRY" 2>&1) || rc=$?
is "$rc" 1 "a missing REPCTL_CONFIG: exit 1"
like "$out" "configuration is not usable" "... with the reason"
like "$out" "missing.conf" "... naming the file"

rc=0
out=$(env "${EPENV[@]}" REPCTL_WAIT_SECONDS=soon sh "$ENTRY" 2>&1) || rc=$?
is "$rc" 1 "REPCTL_WAIT_SECONDS=soon: exit 1"
like "$out" "REPCTL_WAIT_SECONDS must be a number" "... with the reason"

# ---- arguments run repctl ---------------------------------------------------------------
rc=0
out=$(env "${EPENV[@]}" sh "$ENTRY" status --health 2>&1) || rc=$?
is "$rc" 2 "'entrypoint status --health' runs repctl status --health (red: not running)"
like "$out" '^red: coordinator not running' "... and prints its line"
rc=0
out=$(env "${EPENV[@]}" sh "$ENTRY" repctl version 2>&1) || rc=$?
is "$rc" 0 "'entrypoint repctl version'"
like "$out" '^repctl ' "... runs repctl version"

# ======================================================== (b) the compose files ==
if command -v docker-compose >/dev/null 2>&1; then
	pass "docker-compose is installed ($(docker-compose version --short 2>/dev/null || echo '?'))"
else
	fail "docker-compose is installed (scripts/deps.sh installs Debian's docker-compose)"
fi
: >"$TEST_TMP/empty.env"
COMPOSE_ENV=(REPCTL_VPN_ADDRESS=10.8.0.5
	"REPCTL_AUTHORIZED_KEYS=ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTheParserOnly repctl@cavaforgepad")
compose_config() {
	local f=$1 out=$2
	shift 2
	(cd "$ROOT" && env -u REPCTL_META -u REPCTL_STATE_DIR "$@" \
		docker-compose --env-file "$TEST_TMP/empty.env" -f "$f" config) >"$out" 2>"$out.err"
}
for f in docker/docker-compose.yml docker/client/docker-compose.yml; do
	n=$(basename "$f" .yml)
	[[ $f == docker/client/* ]] && n=docker-compose.client
	if compose_config "$f" "$TEST_TMP/$n.out" "${COMPOSE_ENV[@]}"; then
		pass "docker-compose -f $f config"
	else
		fail "docker-compose -f $f config" "$(cat "$TEST_TMP/$n.out.err" 2>/dev/null)"
	fi
done

# yq EXPR FILE : python EXPR on the parsed YAML (as d); prints the value
yq() {
	python3 -c 'import sys, yaml
d = yaml.safe_load(open(sys.argv[2]))
print(eval(sys.argv[1]))' "$1" "$2" 2>&1
}
P=$TEST_TMP/docker-compose.out
C=$TEST_TMP/docker-compose.client.out
is "$(yq 'sorted(d["services"])' "$P")" "['db', 'repctl']" "primary: services db and repctl"
is "$(yq 'd["services"]["db"]["image"]' "$P")" postgres:15 "primary: db is postgres:15"
like "$(yq 'd["services"]["db"]["healthcheck"]["test"]' "$P")" pg_isready "primary: db healthcheck is pg_isready"
is "$(yq 'd["services"]["repctl"]["depends_on"]["db"]["condition"]' "$P")" service_healthy \
	"primary: repctl waits for db to be healthy"
is "$(yq 'd["services"]["repctl"]["restart"]' "$P")" unless-stopped "primary: restart unless-stopped"
is "$(yq 'd["services"]["repctl"]["build"]["target"]' "$P")" runtime "primary: built from the runtime target"
is "$(yq 'd["services"]["repctl"]["build"]["context"]' "$P")" "$ROOT" "primary: build context is the tree"
is "$(yq 'd["services"]["repctl"]["build"]["dockerfile"]' "$P")" docker/Dockerfile "primary: the Dockerfile"
is "$(yq 'sorted(k for k in d["services"]["repctl"]["environment"] if k in ("REPCTL_META", "REPCTL_STATE_DIR", "REPCTL_NODE"))' "$P")" \
	"['REPCTL_META', 'REPCTL_NODE', 'REPCTL_STATE_DIR']" "primary: REPCTL_META, REPCTL_STATE_DIR, REPCTL_NODE set"
like "$(yq 'd["services"]["repctl"]["environment"]["REPCTL_META"]' "$P")" 'host=db ' "primary: the metadata database is the db service"
vols=$(yq '" ".join(v.split(":")[1] for v in d["services"]["repctl"]["volumes"])' "$P")
for v in /etc/repctl /var/lib/repctl /music; do
	like " $vols " " $v " "primary: volume at $v"
done
is "$(yq 'd["services"]["repctl"]["environment"]["REPCTL_STATE_DIR"]' "$P")" /var/lib/repctl \
	"primary: REPCTL_STATE_DIR is the state volume"
like "$(yq 'd["services"]["db"]["volumes"]' "$P")" "$ROOT/docker/initdb:/docker-entrypoint-initdb.d" \
	"primary: db runs docker/initdb"
ok test -x "$ROOT/docker/initdb/10-repctl.sh"
is "$(yq 'd["services"]["db"].get("ports")' "$P")" None "primary: db publishes no port"

is "$(yq 'sorted(d["services"])' "$C")" "['agent', 'db']" "client: services agent and db"
is "$(yq 'd["services"]["agent"]["build"]["context"]' "$C")" "$ROOT" "client: build context is the tree"
is "$(yq 'd["services"]["db"]["environment"]["POSTGRES_DB"]' "$C")" archive_production \
	"client: db creates archive_production"
like "$(yq 'd["services"]["agent"]["healthcheck"]["test"]' "$C")" ssh-keyscan "client: agent healthcheck"
like "$(yq 'd["services"]["db"]["healthcheck"]["test"]' "$C")" pg_isready "client: db healthcheck"
is "$(yq 'd["services"]["agent"]["build"]["target"]' "$C")" agent "client: agent built from the agent target"
is "$(yq 'd["services"]["agent"]["ports"]' "$C")" "['10.8.0.5:2222:2222/tcp']" "client: agent on the VPN address, port 2222"
is "$(yq 'd["services"]["db"]["ports"]' "$C")" "['10.8.0.5:5432:5432/tcp']" "client: PostgreSQL on the VPN address only"
is "$(yq 'd["services"]["agent"]["environment"]["REPCTL_AGENT_ROOT"]' "$C")" /music "client: agent root /music"
like "$(yq 'd["services"]["agent"]["volumes"]' "$C")" ":/music:" "client: music folder mounted at /music"
like "$(yq 'd["services"]["agent"]["volumes"]' "$C")" "/var/lib/repctl-agent" "client: host key volume"
like "$(yq 'd["services"]["agent"]["volumes"]' "$C")" "$ROOT/docker/client/authorized_keys:/etc/repctl/authorized_keys:ro" \
	"client: docker/client/authorized_keys is the agent's key file"
is "$(yq 'd["services"]["agent"]["environment"]["REPCTL_AUTHORIZED_KEYS_FILE"]' "$C")" /etc/repctl/authorized_keys \
	"client: ... as the entrypoint reads it"
rc=0
compose_config docker/client/docker-compose.yml "$TEST_TMP/noaddr.out" "${COMPOSE_ENV[1]}" || rc=$?
ok test "$rc" -ne 0
like "$(cat "$TEST_TMP/noaddr.out.err")" "REPCTL_VPN_ADDRESS" "client: without REPCTL_VPN_ADDRESS, an error naming it"

# ============================================================= (c) the Dockerfile ==
# The Dockerfile as "STAGE<TAB>INSTRUCTION<TAB>ARGS" lines, continuations joined.
df_lines() {
	awk '
		/^[ \t]*#/ && cont == "" { next }
		{
			line = cont $0
			if (line ~ /\\$/) { sub(/\\$/, "", line); cont = line; next }
			cont = ""
			if (line ~ /^[ \t]*$/) next
			sub(/^[ \t]+/, "", line)
			split(line, w, /[ \t]+/)
			ins = toupper(w[1])
			rest = substr(line, length(w[1]) + 2)
			if (ins == "FROM") { stage = (line ~ / [Aa][Ss] /) ? w[4] : w[2] }
			printf "%s\t%s\t%s\n", stage, ins, rest
		}' "$DOCKER/Dockerfile"
}
DF=$(df_lines)
note "Dockerfile stages: $(awk -F'\t' '$2 == "FROM" {printf "%s ", $1}' <<<"$DF")"
is "$(awk -F'\t' '$2 == "FROM" {s = $1} END {print s}' <<<"$DF")" runtime \
	"the last stage (docker build's default) is runtime, the coordinator"
like "$(awk -F'\t' '$1 == "build" && $2 == "FROM"' <<<"$DF")" 'DEBIAN_IMAGE' "build stage from DEBIAN_IMAGE"
like "$(grep -m1 '^ARG DEBIAN_IMAGE=' "$DOCKER/Dockerfile")" 'debian:12-slim' "DEBIAN_IMAGE is debian:12-slim"

# COPY sources from the build context
while IFS=$'\t' read -r stage _ args; do
	read -r -a w <<<"$args"
	[[ ${w[0]} == --from=* ]] && continue
	for ((i = 0; i < ${#w[@]} - 1; i++)); do
		[[ ${w[i]} == --* ]] && continue
		ok test -e "$ROOT/${w[i]}"
		# not left out of the build context by .dockerignore
		while IFS= read -r pat; do
			[[ -z $pat || $pat == \#* ]] && continue
			if [[ ${w[i]%/} == "$pat" || ${w[i]%/} == "$pat"/* ]]; then
				fail "COPY ${w[i]} is excluded by .dockerignore ($pat)"
			fi
		done <"$ROOT/.dockerignore"
	done
done < <(awk -F'\t' '$2 == "COPY"' <<<"$DF")

# Replay the build stage: its COPYs into a scratch /src, its make commands.
CTX=$TEST_TMP/ctx
IMG=$TEST_TMP/img
OUTDIR=$TEST_TMP/out
mkdir -p "$CTX" "$IMG" "$OUTDIR"
workdir=''
while IFS=$'\t' read -r _ ins args; do
	case $ins in
	WORKDIR) workdir=$args ;;
	COPY)
		read -r -a w <<<"$args"
		dst=${w[${#w[@]} - 1]}
		for ((i = 0; i < ${#w[@]} - 1; i++)); do
			src=${w[i]}
			if [[ $dst == */ ]]; then
				mkdir -p "$CTX${dst%/}"
				cp -a "$ROOT/$src" "$CTX${dst%/}/"
			else
				mkdir -p "$(dirname "$CTX$dst")"
				cp -a "$ROOT/$src" "$CTX$dst"
			fi
		done
		;;
	RUN)
		[[ $args == apt-get* ]] && continue
		note "replaying: RUN $args"
		rc=0
		(cd "$CTX$workdir" && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL OUT="$OUTDIR" sh -c "$args") \
			>"$TEST_TMP/build.log" 2>&1 || rc=$?
		is "$rc" 0 "the build stage's RUN (make, make install) succeeds on the copied files"
		((rc == 0)) || tail -n 30 "$TEST_TMP/build.log" | sed 's/^/#   /'
		;;
	esac
done < <(awk -F'\t' '$1 == "build"' <<<"$DF")
ok test -x "$OUTDIR/usr/local/bin/repctl"
fails test -e "$OUTDIR/usr/local/lib/systemd"

# Assemble the other stages' files as the image would hold them.
while IFS=$'\t' read -r stage _ args; do
	read -r -a w <<<"$args"
	dst=${w[${#w[@]} - 1]}
	if [[ ${w[0]} == --from=build ]]; then
		src=${w[1]}
		ok test -e "$OUTDIR${src#/out}"
		mkdir -p "$IMG$dst"
		[[ ! -d $OUTDIR${src#/out} ]] || cp -a "$OUTDIR${src#/out}/." "$IMG$dst/"
	elif [[ $stage != build ]]; then
		mkdir -p "$(dirname "$IMG$dst")"
		cp -a "$ROOT/${w[0]}" "$IMG$dst"
	fi
done < <(awk -F'\t' '$2 == "COPY"' <<<"$DF")

# entrypoint and healthcheck paths
json_first() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[0])' "$1"; }
json_last() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[-1])' "$1"; }
rt_entry=$(awk -F'\t' '$1 == "runtime" && $2 == "ENTRYPOINT" {print $3}' <<<"$DF")
is "$(json_first "$rt_entry")" /usr/local/bin/docker-entrypoint.sh "runtime ENTRYPOINT"
is "$(awk -F'\t' '$1 == "runtime" && $2 == "COPY" && $3 ~ /entrypoint.sh/ {print $3}' <<<"$DF")" \
	"docker/entrypoint.sh /usr/local/bin/docker-entrypoint.sh" "... is where docker/entrypoint.sh is copied"
ok test -x "$IMG/usr/local/bin/docker-entrypoint.sh"
rt_hc=$(awk -F'\t' '$1 == "runtime" && $2 == "HEALTHCHECK" {print $3}' <<<"$DF")
hc_cmd=$(json_last "[${rt_hc#*\[}")
note "runtime HEALTHCHECK command: $hc_cmd"
like "$hc_cmd" '^/usr/local/bin/repctl status --health( |$)' "HEALTHCHECK runs repctl status --health"
hc_bin=${hc_cmd%% *}
ok test -x "$IMG$hc_bin"
like "$(awk -F'\t' '$1 == "build" && $2 == "RUN" && $3 ~ /make install/ {print $3}' <<<"$DF")" \
	'make install PREFIX=/usr/local ' "make install's PREFIX gives BINDIR /usr/local/bin"
like "$("$IMG$hc_bin" --version)" '^repctl ' "the installed binary runs"
ok grep -qaF /etc/repctl/repctl.conf "$IMG$hc_bin"
is "$(awk -F'\t' '$1 == "runtime" && $2 == "USER" {print $3}' <<<"$DF")" repctl "runtime runs as the user repctl"
is "$(awk -F'\t' '$1 == "runtime" && $2 == "VOLUME" {print $3}' <<<"$DF")" '["/var/lib/repctl"]' \
	"runtime VOLUME /var/lib/repctl"
is "$(awk -F'\t' '$2 == "ENV" && $3 ~ /REPCTL_STATE_DIR/ {print $3}' <<<"$DF")" \
	"REPCTL_STATE_DIR=/var/lib/repctl" "the image's REPCTL_STATE_DIR is the volume"
ag_entry=$(awk -F'\t' '$1 == "agent" && $2 == "ENTRYPOINT" {print $3}' <<<"$DF")
ok test -x "$IMG$(json_first "$ag_entry")"
# shellcheck disable=SC2016 # the script's text, not an expansion
ok grep -q 'BIN=${REPCTL_BIN:-/usr/local/bin/repctl}' "$AGENT_ENTRY"
ok test -x "$IMG/usr/local/bin/repctl"

# The HEALTHCHECK's mapping: red (2) becomes Docker's unhealthy (1), the line stays.
rc=0
out=$(/bin/sh -c "${hc_cmd//\/usr\/local\/bin\/repctl/$REPCTL}") || rc=$?
is "$rc" 1 "HEALTHCHECK command: red (coordinator not running) is exit 1 for Docker"
like "$out" '^red: coordinator not running' "... and the line is kept"

# runtime packages provide the binary's libraries
pkgs=" $(awk -F'\t' '$1 == "base" && $2 == "RUN" && $3 ~ /apt-get install/ {print $3}' <<<"$DF" |
	tr -s ' \t' '\n' | grep -E '^[a-z0-9][a-z0-9.+-]+$' | tr '\n' ' ') "
note "runtime packages: $pkgs"
for lib in $(readelf -d "$IMG$hc_bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
	pkg=$(dpkg -S "$lib" 2>/dev/null | grep -E "/$lib\$" | head -n 1 | cut -d: -f1)
	if [[ $pkg == libc6 || $pkgs == *" $pkg "* ]]; then
		pass "$lib comes from $pkg, installed in the runtime image"
	else
		fail "$lib comes from ${pkg:-?}, which the runtime stage does not install"
	fi
done
like "$pkgs" ' postgresql-client ' "postgresql-client (pg_isready) is in the runtime image"
unlike "$pkgs" '-dev ' "no -dev package in the runtime image"

# the systemd unit, installed by make install from the replayed tree
rc=0
(cd "$CTX/src" && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make install PREFIX=/usr/local SYSCONFDIR=/etc/repctl STATEDIR=/var/lib/repctl \
	BINDIR=/opt/repctl/bin DESTDIR="$TEST_TMP/sys") >"$TEST_TMP/sys.log" 2>&1 || rc=$?
is "$rc" 0 "make install with the default SYSTEMDDIR"
UNIT=$TEST_TMP/sys/usr/local/lib/systemd/system/repctl.service
ok test -f "$UNIT"
# shellcheck disable=SC2016 # $MAINPID is the unit's text
for l in 'Type=simple' 'ExecStart=/opt/repctl/bin/repctl start --foreground' \
	'ExecReload=/bin/kill -HUP $MAINPID' 'Restart=on-failure' 'User=repctl' \
	'StateDirectory=repctl' 'Environment=REPCTL_STATE_DIR=/var/lib/repctl' \
	'NoNewPrivileges=yes' 'ProtectSystem=strict' 'ReadWritePaths=/var/lib/repctl -/srv/music'; do
	ok grep -qxF "$l" "$UNIT"
done
if command -v systemd-analyze >/dev/null 2>&1; then
	sed "s|/opt/repctl/bin/repctl|$IMG/usr/local/bin/repctl|" "$UNIT" >"$TEST_TMP/repctl.service"
	ok systemd-analyze verify --man=no "$TEST_TMP/repctl.service"
else
	note "systemd-analyze not installed: the unit's syntax is not verified"
fi

# ================================================================ (d) the agent ==
if ((EUID != 0)); then
	fail "the agent part runs as root (it creates a user and starts sshd)"
	done_testing
fi
AUSER=repctlagent
mkdir -p "$PG_PORT_LOCK_DIR"
# shellcheck disable=SC2016 # $1 is expanded by the inner sh
flock "$PG_PORT_LOCK_DIR" sh -c '
	id -u "$1" >/dev/null 2>&1 ||
	useradd --system --no-create-home --home-dir / --shell /bin/sh "$1"
	usermod -p "*" "$1"
' sh "$AUSER"
ok id -u "$AUSER"
# sshd's StrictModes wants root-owned, not world-writable directories up to /
RUNBASE=$(mktemp -d /run/repctl-agent-test.XXXXXX)
chmod 755 "$RUNBASE"
cleanup_push rm -rf -- "$RUNBASE"
_pg_pick_port
APORT=$_PG_NEWPORT
cleanup_push rm -rf -- "$PG_PORT_LOCK_DIR/$APORT"

CM=$TEST_TMP/cmusic
JM=$TEST_TMP/jmusic
mkdir -p "$CM/albums/blue" "$JM/albums" "$TEST_TMP/c2" "$TEST_TMP/j2"
head -c 300000 /dev/urandom >"$CM/albums/blue/01 So What.flac"
printf 'track list\n' >"$CM/albums/blue/tracks.txt"
printf 'from jukebox\n' >"$JM/albums/juke.txt"
chown -R "$AUSER:" "$JM" "$TEST_TMP/j2"
PUB=$(cut -d' ' -f1,2 "$STATE/ssh/id_ed25519.pub")
AGENV=(REPCTL_AGENT_ROOT="$JM" REPCTL_AGENT_USER="$AUSER" REPCTL_SSH_PORT="$APORT"
	REPCTL_SSH_LISTEN=127.0.0.1 REPCTL_SSH_HOST_KEY_DIR="$RUNBASE/keys"
	REPCTL_SSHD_RUN_DIR="$RUNBASE/run" REPCTL_BIN="$REPCTL"
	REPCTL_AUTHORIZED_KEYS_FILE="$RUNBASE/none"
	# options of its own, to be replaced
	REPCTL_AUTHORIZED_KEYS="# the primary
no-pty,command=\"/bin/sh\" $PUB repctl@cavaforgepad")

rc=0
out=$(env "${AGENV[@]}" REPCTL_AUTHORIZED_KEYS='' sh "$AGENT_ENTRY" 2>&1) || rc=$?
is "$rc" 1 "agent without any key: refuses to start"
like "$out" "no authorized key: set REPCTL_AUTHORIZED_KEYS" "... saying what to set"
rc=0
out=$(env "${AGENV[@]}" REPCTL_AGENT_ROOT="$TEST_TMP/nothere" sh "$AGENT_ENTRY" 2>&1) || rc=$?
is "$rc" 1 "agent without its folder: refuses to start"
like "$out" "is not a directory: mount the music folder there" "... saying what to mount"

agent_start() {
	local log=$1
	shift
	env "${AGENV[@]}" "$@" sh "$AGENT_ENTRY" >"$log" 2>&1 &
	AG_PID=$!
	cleanup_push stop_pid "$AG_PID"
	note "agent entrypoint pid $AG_PID, log $log"
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
agent_start "$TEST_TMP/agent1.log"
wait_until 20 port_open "$APORT" || show_log "$TEST_TMP/agent1.log"
ok port_open "$APORT"
is "$(cat /proc/"$AG_PID"/comm 2>/dev/null)" sshd "the entrypoint became sshd (exec)"
FP=$(ssh-keygen -l -E sha256 -f "$RUNBASE/keys/ssh_host_ed25519_key.pub" | awk '{print $2}')
ok log_has "$TEST_TMP/agent1.log" "host key fingerprint: $FP"
AK=$(cat "$RUNBASE/run/authorized_keys")
is "$AK" "restrict,command=\"$REPCTL agent --root=$JM\" $PUB repctl@cavaforgepad" \
	"authorized_keys: one line, restrict,command=\"repctl agent --root=...\" instead of the key's own options"
is "$(stat -c '%U %a' "$RUNBASE/run/authorized_keys")" "root 644" "authorized_keys owned by root"

# the primary's side: nodes cava (local) and juke (through the agent)
export REPCTL_NODE=cava
run_repctl add database cava conn="$(pg_conninfo dmeta postgres)"
is "$RC" 0 "add database cava"
run_repctl add database juke conn="$(pg_conninfo dmeta postgres)" ssh="$AUSER@127.0.0.1:$APORT" agent="$REPCTL"
is "$RC" 0 "add database juke ssh=$AUSER@127.0.0.1:$APORT"
run_repctl trust juke --fingerprint="$FP"
is "$RC" 0 "repctl trust juke --fingerprint=<the fingerprint the agent printed>"
[[ $RC == 0 ]] || note "$ERR"
run_repctl add folder music nodes="cava:$CM,juke:$JM"
is "$RC" 0 "add folder music"
[[ $RC == 0 ]] || note "$ERR"
run_repctl sync folder music
is "$RC" 0 "sync folder music through the agent's sshd"
[[ $RC == 0 ]] || note "$ERR"
tree() { (cd "$1" && find . -path ./.repctl -prune -o -type f -print0 | sort -z | xargs -0 -r sha256sum); }
is "$(tree "$JM")" "$(tree "$CM")" "the two folders are the same"
ok test -f "$CM/albums/juke.txt"
is "$(stat -c %U "$JM/albums/blue/01 So What.flac")" "$AUSER" "files arrive as the agent's user"

# whatever the client asks for, it gets the agent
rc=0
out=$(timeout 20 ssh -i "$STATE/ssh/id_ed25519" -p "$APORT" -o BatchMode=yes -o IdentitiesOnly=yes \
	-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
	"$AUSER@127.0.0.1" 'id; echo SHELL-REACHED' </dev/null 2>&1) || rc=$?
note "ssh ... 'id': exit $rc, $(head -c 200 <<<"$out" | tr '\n' ' ')"
unlike "$out" 'SHELL-REACHED|uid=' "a shell command is not run: the forced command is the agent"
rc=0
timeout 20 ssh -i "$STATE/ssh/id_ed25519" -p "$APORT" -o BatchMode=yes -o IdentitiesOnly=yes \
	-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
	-R "0:127.0.0.1:$PORT" -N -o ExitOnForwardFailure=yes "$AUSER@127.0.0.1" </dev/null \
	>"$TEST_TMP/fwd.log" 2>&1 || rc=$?
note "port forwarding attempt: exit $rc, $(tr '\n' ' ' <"$TEST_TMP/fwd.log")"
is "$rc" 255 "a port forwarding request is refused (ssh exits 255 at once)"

run_repctl add folder other nodes="cava:$TEST_TMP/c2,juke:$TEST_TMP/j2"
run_repctl sync folder other
ok test "$RC" -ne 0
like "$ERR" "outside the directory this agent serves" "a folder outside the agent's root is refused"

# a restart keeps the host key; the key from the file this time
stop_pid "$AG_PID"
printf '%s\n' "# the primary" "$PUB repctl@cavaforgepad" >"$RUNBASE/keyfile"
agent_start "$TEST_TMP/agent2.log" REPCTL_AUTHORIZED_KEYS= REPCTL_AUTHORIZED_KEYS_FILE="$RUNBASE/keyfile"
wait_until 20 port_open "$APORT" || show_log "$TEST_TMP/agent2.log"
ok port_open "$APORT"
ok log_has "$TEST_TMP/agent2.log" "host key fingerprint: $FP"
unlike "$(cat "$TEST_TMP/agent2.log")" "created the host key" "a restart keeps the host key"
is "$(cat "$RUNBASE/run/authorized_keys")" "$AK" "the key from REPCTL_AUTHORIZED_KEYS_FILE, restricted the same way"
printf 'new track\n' >"$CM/albums/blue/02 Freddie Freeloader.txt"
run_repctl sync folder music
is "$RC" 0 "sync folder music after the agent's restart (known host key still valid)"
is "$(tree "$JM")" "$(tree "$CM")" "... and the new file arrived"
stop_pid "$AG_PID"

# ======================================================================= done ==
reports=''
for f in "$TEST_TMP"/san/daemon*; do
	[[ -e $f ]] && reports+="== $f"$'\n'"$(head -n 40 -- "$f")"$'\n'
done
is "$reports" "" "no sanitizer report from the processes the scripts started"
done_testing
