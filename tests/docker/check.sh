#!/usr/bin/env bash
# tests/docker/check.sh - `make check-docker`: the Docker deployment end to
# end, on one host, with real images and compose stacks (docs/OPERATIONS.md,
# "Docker", and docs/ARCHIVE-GUIDE.md, "Add a client").  Run as root.
#
# 1. ../shared/tools/docker/setup.sh (outside the project: Debian's
#    docker.io, dockerd, the stand-in debian:12-slim and postgres:15
#    images; idempotent); `docker compose` if it exists, else Debian's
#    docker-compose (v1).
# 2. A copy of the checkout's build context (what docker/Dockerfile
#    copies) in a scratch directory; both images of docker/Dockerfile are
#    built from it (runtime = the coordinator, agent), under tags of this
#    run.
# 3. The primary, as the Docker section of docs/OPERATIONS.md says: docker/.env from
#    env.example, the two secrets, `up -d --build`; its db and repctl
#    become healthy (a fresh primary is green "idle"); its web console,
#    turned on in config/repctl.conf, answers on the published address
#    (docker0's, standing for the VPN address) and not on the host's
#    loopback, and refuses an action without the token; an archive_production
#    with two tables in its db; then the quick start through `exec`: add
#    database, add all tables.
# 4. "Add a client": `client-kit client1` inside the container, the kit
#    copied out (docker cp), its .env edited as its README.txt says
#    (REPCTL_VPN_ADDRESS = docker0's address, the music folder), its
#    `docker compose up -d --build` (its own project), the agent's
#    fingerprint from its log, `onboard` with the command line of the
#    kit's README.txt, then the folder music of both.
# 5. Checks: healthchecks reach healthy; rows replicate both ways; a file
#    syncs both ways through the agent, written as uid REPCTL_UID; every
#    process of the coordinator's container runs as the user repctl (uid
#    1000), the agent's sshd as root and its sessions as repctl;
#    `logs repctl` shows the coordinator's runs; status/reload/kick through
#    `exec` and from another container (`run --rm repctl ...`).
# 6. `down` + `up -d` of both stacks: rows, syncs, the coordinator's key,
#    the agent's host key fingerprint and the known hosts are kept, and
#    replication resumes both ways.
# 7. A third node, client3, onboarded from its own kit (other published
#    ports on the same address) with --folder: its rows and files reach
#    client1 through the primary and back.
#
# Everything this run creates (containers, networks, volumes, image tags,
# the dangling images of its builds, the scratch directory) is removed at
# the end, by name or ID, also on failure.  REPCTL_CHECK_KEEP=1 keeps it
# all for a look (then remove it by hand: the commands are printed).
#
# Environment: REPCTL_DOCKER_SETUP (default ../shared/tools/docker/setup.sh
# from the checkout), REPCTL_CHECK_ADDR (default docker0's IPv4 address),
# REPCTL_CHECK_KEEP.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# the shared setup script beside the project (../shared from /work/main); a
# clone elsewhere (CI's clean clone) finds it at its usual absolute place
SETUP=${REPCTL_DOCKER_SETUP:-}
if [[ -z $SETUP ]]; then
	for c in "$ROOT/../shared/tools/docker/setup.sh" /work/shared/tools/docker/setup.sh; do
		if [[ -r $c ]]; then
			SETUP=$c
			break
		fi
	done
fi
T0=$(date +%s)
ID=rc$$
P_PRIMARY=repctl-check-$ID-primary
P_CLIENT1=repctl-check-$ID-client1
P_CLIENT3=repctl-check-$ID-client3
IMG_RUNTIME=repctl-check:$ID
IMG_AGENT=repctl-check-agent:$ID
IMG_KIT=repctl-check-kit-agent:$ID
NFAIL=0
NPASS=0

say() { printf '# [%4ds] %s\n' "$(($(date +%s) - T0))" "$*"; }
pass() {
	NPASS=$((NPASS + 1))
	printf 'ok %d - %s\n' "$((NPASS + NFAIL))" "$*"
}
fail() {
	NFAIL=$((NFAIL + 1))
	printf 'not ok %d - %s\n' "$((NPASS + NFAIL))" "$*"
}
die() {
	printf 'check-docker: error: %s\n' "$*" >&2
	exit 1
}
# check DESC CMD... : pass when CMD succeeds
check() {
	local desc=$1
	shift
	if "$@"; then pass "$desc"; else fail "$desc"; fi
}
# wait_for SECONDS DESC CMD... : poll CMD every 2 s; pass/fail
wait_for() {
	local secs=$1 desc=$2 start
	shift 2
	start=$(date +%s)
	while :; do
		if "$@" >/dev/null 2>&1; then
			pass "$desc ($(($(date +%s) - start))s)"
			return 0
		fi
		if (($(date +%s) - start >= secs)); then
			fail "$desc (not within ${secs}s)"
			return 1
		fi
		sleep 2
	done
}

[[ $(id -u) -eq 0 ]] || die "run as root (the shared setup script installs and starts Docker)"
if [[ -z $SETUP || ! -r $SETUP ]]; then
	# no Docker here at all: said loudly, not a failure of the project
	echo "check-docker: SKIPPED: no Docker setup script (looked for ../shared/tools/docker/setup.sh beside the project and /work/shared/tools/docker/setup.sh; set REPCTL_DOCKER_SETUP)" >&2
	exit 0
fi

# ---- 1. Docker --------------------------------------------------------------------------
say "docker setup: $SETUP"
bash "$SETUP"
if docker compose version >/dev/null 2>&1; then
	COMPOSE=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
	COMPOSE=(docker-compose)
else
	die "neither 'docker compose' nor 'docker-compose' is installed"
fi
say "compose: ${COMPOSE[*]} ($("${COMPOSE[@]}" version --short 2>/dev/null || echo '?'))"
ADDR=${REPCTL_CHECK_ADDR:-$(ip -4 -o addr show docker0 | awk '{sub(/\/.*/, "", $4); print $4; exit}')}
[[ -n $ADDR ]] || die "no IPv4 address on docker0 (REPCTL_CHECK_ADDR)"
say "the clients' VPN address: $ADDR (docker0)"

WORK=$(mktemp -d /tmp/repctl-dcheck.XXXXXX)
DANGLING_BEFORE=$(docker images -q --no-trunc --filter dangling=true | sort -u)

# c_primary ARGS / c_client1 ARGS / c_client3 ARGS : compose in each project's directory
c_primary() { (cd "$WORK/tree/docker" && "${COMPOSE[@]}" -p "$P_PRIMARY" "$@"); }
c_client1() { (cd "$WORK/client1-kit" && "${COMPOSE[@]}" -p "$P_CLIENT1" "$@"); }
c_client3() { (cd "$WORK/client3-kit" && "${COMPOSE[@]}" -p "$P_CLIENT3" "$@"); }

cleanup() {
	local rc=$? p ids
	set +e
	if ((rc != 0 || NFAIL > 0)); then
		say "failure: the last log lines of every container of this run"
		for p in "$P_PRIMARY" "$P_CLIENT1" "$P_CLIENT3"; do
			for c in $(docker ps -aq --filter "label=com.docker.compose.project=$p"); do
				echo "# ---- $(docker inspect --format '{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}' "$c")"
				docker logs --tail 40 "$c" 2>&1 | sed 's/^/#   /'
			done
		done
	fi
	if [[ ${REPCTL_CHECK_KEEP:-0} == 1 ]]; then
		say "REPCTL_CHECK_KEEP=1: kept $WORK, projects $P_PRIMARY $P_CLIENT1 $P_CLIENT3, images $IMG_RUNTIME $IMG_AGENT $IMG_KIT"
		say "remove with: for p in $P_PRIMARY $P_CLIENT1 $P_CLIENT3; do docker rm -f \$(docker ps -aq --filter label=com.docker.compose.project=\$p); done; ..."
		exit "$rc"
	fi
	say "cleaning up"
	[[ -d $WORK/tree/docker ]] && c_primary down -v --remove-orphans -t 20 >/dev/null 2>&1
	[[ -d $WORK/client1-kit ]] && c_client1 down -v --remove-orphans -t 20 >/dev/null 2>&1
	[[ -d $WORK/client3-kit ]] && c_client3 down -v --remove-orphans -t 20 >/dev/null 2>&1
	# whatever compose left (a failed up, a `run` container): by the project's label
	for p in "$P_PRIMARY" "$P_CLIENT1" "$P_CLIENT3"; do
		ids=$(docker ps -aq --filter "label=com.docker.compose.project=$p")
		# shellcheck disable=SC2086 # IDs
		[[ -n $ids ]] && docker rm -f $ids >/dev/null
		ids=$(docker volume ls -q --filter "label=com.docker.compose.project=$p")
		# shellcheck disable=SC2086 # IDs
		[[ -n $ids ]] && docker volume rm $ids >/dev/null
		ids=$(docker network ls -q --filter "label=com.docker.compose.project=$p")
		# shellcheck disable=SC2086 # IDs
		[[ -n $ids ]] && docker network rm $ids >/dev/null
	done
	for i in "$IMG_RUNTIME" "$IMG_AGENT" "$IMG_KIT"; do
		docker image inspect "$i" >/dev/null 2>&1 && docker rmi "$i" >/dev/null
	done
	# the dangling images this run's builds left (the build stage, ...), by ID
	ids=$(comm -13 <(printf '%s\n' "$DANGLING_BEFORE") \
		<(docker images -q --no-trunc --filter dangling=true | sort -u))
	# shellcheck disable=SC2086 # IDs
	[[ -n $ids ]] && docker rmi $ids >/dev/null 2>&1
	rm -rf -- "$WORK"
	if ((rc == 0 && NFAIL > 0)); then rc=1; fi
	say "done: $NPASS passed, $NFAIL failed, $(($(date +%s) - T0))s$( ((rc == 0)) || echo ": FAILED (exit $rc)")"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- 2. the build context and both images -------------------------------------------------
mkdir -p "$WORK/tree"
(cd "$ROOT" && tar -cf - --exclude=build --exclude=build-asan --exclude='*.o' \
	Makefile .dockerignore include src sql scripts docs etc docker web) | tar -C "$WORK/tree" -xf -
rm -f "$WORK/tree/docker/.env" && rm -rf "$WORK/tree/docker/secrets" "$WORK/tree/docker/authorized_keys" "$WORK/tree/docker/config"
say "building $IMG_RUNTIME and $IMG_AGENT from the checkout"
t=$(date +%s)
(cd "$WORK/tree" && docker build -q -f docker/Dockerfile --target runtime -t "$IMG_RUNTIME" . >/dev/null) ||
	die "docker build of the runtime image failed"
(cd "$WORK/tree" && docker build -q -f docker/Dockerfile --target agent -t "$IMG_AGENT" . >/dev/null) ||
	die "docker build of the agent image failed"
pass "both images of docker/Dockerfile build ($(($(date +%s) - t))s)"
check "the runtime image runs as the user repctl" \
	test "$(docker image inspect --format '{{.Config.User}}' "$IMG_RUNTIME")" = repctl
check "the agent image: repctl --version" bash -c "docker run --rm --entrypoint /usr/local/bin/repctl '$IMG_AGENT' --version >/dev/null"

# the refusals at start (item: compose pitfalls), each with what to do
install -d -o 0 -g 0 "$WORK/root-music" "$WORK/empty-keys"
refusal() { # IMAGE EXPECTED ARGS... : the container exits 1 and says EXPECTED
	local img=$1 want=$2 out rc=0
	shift 2
	out=$(docker run --rm "$@" "$img" 2>&1) || rc=$?
	[[ $rc -ne 0 && $out == *"$want"* ]] || { printf '%s\n' "$out" | sed 's/^/#   /'; return 1; }
}
check "the coordinator refuses a music folder owned by root, saying: chown -R 1000:1000 HOST_DIR" \
	refusal "$IMG_RUNTIME" "chown -R 1000:1000 /srv/music" -v "$WORK/root-music:/music" \
	-e REPCTL_META="host=127.0.0.1 dbname=repctl" -e REPCTL_MUSIC_HOST_DIR=/srv/music
echo data >"$WORK/root-music/a-file"
check "the agent refuses a non-empty music folder it cannot write, saying what to chown" \
	refusal "$IMG_AGENT" "chown -R 1000:1000 /srv/music" -v "$WORK/root-music:/music" \
	-e REPCTL_MUSIC_HOST_DIR=/srv/music -e "REPCTL_AUTHORIZED_KEYS=ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTheCheckOnly x@y"
install -d -o 1000 -g 1000 "$WORK/user-music"
check "the agent without a key, authorized_keys an empty directory (Docker's), says: rmdir authorized_keys" \
	refusal "$IMG_AGENT" "rmdir authorized_keys" -v "$WORK/user-music:/music" -v "$WORK/empty-keys:/etc/repctl/authorized_keys:ro"

# ---- 3. the primary --------------------------------------------------------------------------
D=$WORK/tree/docker
MUSIC_P=$WORK/music-primary MUSIC_1=$WORK/music-client1 MUSIC_3=$WORK/music-client3
CPORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
CTOKEN=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
install -d -o 1000 -g 1000 "$MUSIC_P"
(
	cd "$D"
	cp env.example .env
	sed -i -e "s|^REPCTL_MUSIC_DIR=.*|REPCTL_MUSIC_DIR=$MUSIC_P|" .env
	# the console, as docker/env.example says: published on the "VPN address"
	# (docker0's here) only, turned on in config/repctl.conf with a token
	{
		echo "REPCTL_IMAGE=$IMG_RUNTIME"
		echo "REPCTL_CONSOLE_ADDRESS=$ADDR"
		echo "REPCTL_CONSOLE_PORT=$CPORT"
	} >>.env
	install -d -m 755 config
	printf 'http = { listen = "0.0.0.0:8675"; token = "%s"; };\n' "$CTOKEN" >config/repctl.conf
	chmod 644 config/repctl.conf
	install -d -m 700 secrets
	head -c 18 /dev/urandom | base64 >secrets/postgres_password
	head -c 18 /dev/urandom | base64 >secrets/repctl_meta_password
	chmod 644 secrets/*
)
METAPW=$(cat "$D/secrets/repctl_meta_password")
say "primary: up -d --build"
t=$(date +%s)
c_primary up -d --build >"$WORK/primary-up.log" 2>&1 || {
	cat "$WORK/primary-up.log"
	die "the primary's 'up -d --build' failed"
}
pass "primary: up -d --build ($(($(date +%s) - t))s)"
cid() { docker ps -q --filter "label=com.docker.compose.project=$1" --filter "label=com.docker.compose.service=$2" | head -n 1; }
health() { docker inspect --format '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$(cid "$1" "$2")" 2>/dev/null; }
is_healthy() { [[ $(health "$1" "$2") == healthy ]]; }
wait_for 120 "primary: db healthy" is_healthy "$P_PRIMARY" db
wait_for 150 "primary: repctl healthy (a fresh primary is green: idle)" is_healthy "$P_PRIMARY" repctl
rx() { c_primary exec -T repctl repctl "$@"; }
OUT=$(rx status --health 2>&1 || true)
say "status --health: $OUT"
check "status --health of the fresh primary is green" grep -q '^green' <<<"$OUT"
# the console: on the published address, not on the host's loopback, actions need the token
code() { curl -s -o /dev/null -m 10 -w '%{http_code}' "$@" || true; }
console_up() { [[ $(code "http://$ADDR:$CPORT/healthz") == 200 ]]; }
wait_for 60 "console: /healthz answers 200 on the published address $ADDR:$CPORT" console_up
check "console: nothing on the host's loopback at that port (published on one address only)" \
	bash -c "[[ \$(curl -s -o /dev/null -m 5 -w '%{http_code}' http://127.0.0.1:$CPORT/healthz || true) == 000 ]]"
check "console: an action without the token is refused (401)" \
	bash -c "[[ \$(curl -s -o /dev/null -m 10 -w '%{http_code}' -X POST http://$ADDR:$CPORT/api/v1/folders/none/sync || true) == 401 ]]"
check "console: with the token, the API answers (GET /api/v1/status 200)" \
	bash -c "[[ \$(curl -s -o /dev/null -m 10 -w '%{http_code}' -H 'Authorization: Bearer $CTOKEN' http://$ADDR:$CPORT/api/v1/status || true) == 200 ]]"

psql_p() { c_primary exec -T db psql -X -v ON_ERROR_STOP=1 -U postgres -d "${2:-archive_production}" -Atqc "$1"; }
SCHEMA="
CREATE TABLE public.artists (id bigserial PRIMARY KEY, name text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE public.albums (id bigserial PRIMARY KEY, artist_id bigint REFERENCES public.artists,
  title text NOT NULL, updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE public.schema_migrations (version varchar PRIMARY KEY);
INSERT INTO public.artists (name) SELECT 'artist ' || g FROM generate_series(1, 20) g;
INSERT INTO public.albums (artist_id, title) SELECT g, 'album ' || g FROM generate_series(1, 20) g;
INSERT INTO public.schema_migrations VALUES ('20240101000000');
"
# the quick start's step 1 on the primary's own cluster (the role repctl exists: the metadata's)
psql_p "CREATE DATABASE archive_production" postgres
c_primary exec -T db psql -X -q -v ON_ERROR_STOP=1 -U postgres -d archive_production <<SQL >/dev/null || die "cannot create archive_production on the primary"
$SCHEMA
CREATE ROLE archive NOLOGIN;
SELECT format('ALTER TABLE %I.%I OWNER TO archive', schemaname, tablename)
  FROM pg_tables WHERE schemaname = 'public' \\gexec
GRANT archive TO repctl;
GRANT SELECT, INSERT, UPDATE, DELETE, TRIGGER ON ALL TABLES IN SCHEMA public TO repctl;
GRANT CREATE ON DATABASE archive_production TO repctl;
GRANT SET ON PARAMETER session_replication_role TO repctl;
SQL
step() {
	local out
	if out=$(rx "$@" 2>&1); then
		# shellcheck disable=SC2001
		pass "repctl $(sed 's/pass=[^ ]*/pass=.../' <<<"$*")"
	else
		# shellcheck disable=SC2001
		fail "repctl $(sed 's/pass=[^ ]*/pass=.../' <<<"$*")"
		printf '%s\n' "$out" | sed 's/^/#   /'
		return 1
	fi
}
step add database cavaforgepad dbname=archive_production host=db port=5432 user=repctl "pass=$METAPW"
step add all tables --herd=archive_herd --db=cavaforgepad '--exclude=schema_migrations,ar_internal_metadata'

# ---- 4. a client from the kit ---------------------------------------------------------------
# make_kit NAME DB_PORT SSH_PORT : client-kit inside the container, copied out, .env edited
make_kit() {
	local name=$1 dbp=$2 sshp=$3 kit=$WORK/$1-kit music=$WORK/music-$1
	step client-kit "$name" --out "/var/lib/repctl/$name-kit" "from=$ADDR" "host=$ADDR" || return 1
	docker cp "$(cid "$P_PRIMARY" repctl):/var/lib/repctl/$name-kit" "$kit" || return 1
	# the operator's edits (the kit's README.txt, step 1), and this run's image tag and ports
	sed -i -e "s|^REPCTL_MUSIC_DIR=.*|REPCTL_MUSIC_DIR=$music|" "$kit/.env"
	printf 'REPCTL_AGENT_IMAGE=%s\nREPCTL_DB_PUBLISH_PORT=%s\nREPCTL_SSH_PUBLISH_PORT=%s\n' \
		"$IMG_KIT" "$dbp" "$sshp" >>"$kit/.env"
	grep -q "^REPCTL_VPN_ADDRESS=$ADDR\$" "$kit/.env"
}
check "client-kit client1 (inside the container): the kit's .env has the VPN address" make_kit client1 5432 2222
check "the kit is the project's compose file with the agent built from the kit" \
	grep -q 'dockerfile: Dockerfile' "$WORK/client1-kit/docker-compose.yml"
check "the kit's onboard line logs in as repctl@" grep -q 'ssh=repctl@' "$WORK/client1-kit/README.txt"
say "client1: up -d --build"
t=$(date +%s)
c_client1 up -d --build >"$WORK/client1-up.log" 2>&1 || {
	cat "$WORK/client1-up.log"
	die "client1's 'up -d --build' failed"
}
pass "client1: up -d --build ($(($(date +%s) - t))s)"
wait_for 120 "client1: db healthy" is_healthy "$P_CLIENT1" db
wait_for 120 "client1: agent healthy" is_healthy "$P_CLIENT1" agent
# published_ok PROJECT : every port the project's containers publish is bound to ADDR
published_ok() {
	local c ips
	ips=$(for c in $(docker ps -q --filter "label=com.docker.compose.project=$1"); do
		docker inspect --format '{{range $p, $b := .HostConfig.PortBindings}}{{range $b}}{{.HostIp}} {{end}}{{end}}' "$c"
	done | tr ' ' '\n' | sed '/^$/d' | sort -u)
	[[ $ips == "$ADDR" ]]
}
check "client1 publishes PostgreSQL and SSH on the VPN address only" published_ok "$P_CLIENT1"
check "client1: the missing music folder Docker made for root was given to uid 1000" \
	test "$(stat -c %u "$MUSIC_1")" = 1000
fingerprint() { "$1" logs agent 2>&1 | sed -n 's/.*host key fingerprint: \(SHA256:[^ ]*\).*/\1/p' | tail -n 1; }
FP1=$(fingerprint c_client1)
check "client1: the agent's log has its host key fingerprint ($FP1)" test -n "$FP1"
# primary_steps NAME DB_PORT SSH_PORT : the commands of the kit's README.txt for the
# primary ("repctl onboard ...", and for the first client "repctl add folder",
# "repctl reload", "repctl status"), the placeholders filled in as an operator would
primary_steps() {
	local name=$1 dbp=$2 sshp=$3 kit=$WORK/$1-kit line fp pw n=0 lines
	fp=$(fingerprint "c_$name")
	pw=$(sed -n 's/^REPCTL_DB_PASSWORD=//p' "$kit/.env")
	[[ -n $pw ]] || pw=$(cat "$kit/secrets/postgres_password")
	mapfile -t lines < <(sed -n '/^On the primary/,/^$/p' "$kit/README.txt" | grep '^  repctl ')
	for line in "${lines[@]}"; do
		line=${line#  repctl }
		line=${line%%  *#*}
		line=${line//CLIENT_ADDRESS:2222/$ADDR:$sshp}
		line=${line//CLIENT_ADDRESS/$ADDR}
		line=${line//port=5432/port=$dbp}
		line=${line//SHA256:.../$fp}
		line=${line//pass=PASSWORD/pass=$pw}
		n=$((n + 1))
		# shellcheck disable=SC2086 # the README's words
		step $line || return 1
		# the quick start's step 8: each node its own ids before the client inserts rows
		[[ $line == onboard* ]] && { step partition sequences "cavaforgepad_to_$name" || return 1; }
	done
	((n >= 2))
}
check "client1: the primary's steps of the kit's README.txt" primary_steps client1 5432 2222

# ---- 5. the checks -----------------------------------------------------------------------
psql_c() { "c_$1" exec -T db psql -X -v ON_ERROR_STOP=1 -U postgres -d archive_production -Atqc "$2"; }
has_row() { [[ $(psql_c "$1" "SELECT count(*) FROM public.artists WHERE name = '$2'") == 1 ]]; }
has_row_p() { [[ $(psql_p "SELECT count(*) FROM public.artists WHERE name = '$1'") == 1 ]]; }
check "client1 got the primary's 20 artists and 20 albums (initial copy)" \
	test "$(psql_c client1 "SELECT (SELECT count(*) FROM artists) || '/' || (SELECT count(*) FROM albums)")" = 20/20
psql_p "INSERT INTO artists (name) VALUES ('from primary 1')"
wait_for 90 "a row inserted on the primary reaches client1" has_row client1 'from primary 1'
psql_c client1 "INSERT INTO artists (name) VALUES ('from client1 1')"
wait_for 90 "a row inserted on client1 reaches the primary" has_row_p 'from client1 1'

has_file() { [[ -f $1 ]] && cmp -s "$1" "$2"; }
head -c 300000 /dev/urandom >"$MUSIC_P/song-primary.flac"
chown 1000:1000 "$MUSIC_P/song-primary.flac"
wait_for 90 "a file added on the primary reaches client1 through the agent" has_file "$MUSIC_1/song-primary.flac" "$MUSIC_P/song-primary.flac"
check "... written there as uid 1000 (repctl, not root)" test "$(stat -c %u "$MUSIC_1/song-primary.flac" 2>/dev/null)" = 1000
head -c 200000 /dev/urandom >"$MUSIC_1/song-client1.flac"
chown 1000:1000 "$MUSIC_1/song-client1.flac"
step sync folder music
wait_for 60 "a file added on client1 reaches the primary" has_file "$MUSIC_P/song-client1.flac" "$MUSIC_1/song-client1.flac"

# procs_uids PROJECT SERVICE : the distinct uids of the container's processes ("1000 ")
procs_uids() { docker top "$(cid "$1" "$2")" -eo pid,uid,comm | awk 'NR > 1 { print $2 }' | sort -u | tr '\n' ' '; }
check "every process of the coordinator's container runs as uid 1000 (repctl): $(procs_uids "$P_PRIMARY" repctl)" \
	test "$(procs_uids "$P_PRIMARY" repctl)" = "1000 "
# root_procs PROJECT SERVICE : the commands running as root there, but sshd and the
# healthcheck's (sh -c "ssh-keyscan ... | grep ...") ("" = none)
root_procs() {
	docker top "$(cid "$1" "$2")" -eo pid,uid,comm,args |
		awk 'NR > 1 && $2 == 0 && $3 != "sshd" && !/ssh-keyscan|grep -q ssh-ed25519/ { print $3 }'
}
check "the agent's container: sshd runs as root (documented), nothing else: '$(root_procs "$P_CLIENT1" agent)'" \
	test -z "$(root_procs "$P_CLIENT1" agent)"
wait_for 60 "logs repctl shows the coordinator's runs" bash -c "cd '$D' && ${COMPOSE[*]} -p '$P_PRIMARY' logs repctl 2>&1 | grep -q 'run good in'"
check "the coordinator's SSH key is named after the node (repctl@cavaforgepad)" \
	bash -c "cd '$D' && ${COMPOSE[*]} -p '$P_PRIMARY' exec -T repctl cat /var/lib/repctl/ssh/id_ed25519.pub | grep -q ' repctl@cavaforgepad\$'"
check "logs repctl shows the coordinator's start" bash -c "cd '$D' && ${COMPOSE[*]} -p '$P_PRIMARY' logs repctl 2>&1 | grep -q 'coordinator running'"
wait_for 150 "primary: repctl healthy with the client's syncs" is_healthy "$P_PRIMARY" repctl

ctl_run() { c_primary run --rm -T repctl "$@"; }
step status
step reload
step kick cavaforgepad_to_client1
run_status() { ctl_run status >"$WORK/run-status.out" 2>&1; }
check "status from another container (run --rm repctl status)" run_status
sed 's/^/#   /' "$WORK/run-status.out"
check "... it sees the running coordinator" grep -qi 'coordinator.*running\|running.*coordinator' "$WORK/run-status.out"
check "reload from another container (run --rm repctl reload)" ctl_run reload
check "kick from another container (run --rm repctl kick ...)" ctl_run kick client1_to_cavaforgepad
check "still one coordinator (the other container started none)" \
	test "$(docker ps -q --filter "label=com.docker.compose.project=$P_PRIMARY" --filter "label=com.docker.compose.service=repctl" | wc -l)" = 1
psql_p "INSERT INTO artists (name) VALUES ('after control')"
wait_for 90 "replication goes on after reload and kick" has_row client1 'after control'

# ---- 6. down + up -------------------------------------------------------------------------------
keys_state() {
	echo "syncs: $(rx list syncs 2>&1 | sort | tr '\n' ' ')"
	echo "key: $(c_primary exec -T repctl sh -c 'ssh-keygen -lf /var/lib/repctl/ssh/id_ed25519.pub 2>/dev/null || cat /var/lib/repctl/ssh/id_ed25519.pub')"
	echo "known_hosts: $(c_primary exec -T repctl cat /var/lib/repctl/ssh/known_hosts | sort | tr '\n' ' ')"
	echo "agent fingerprint: $(c_client1 exec -T agent ssh-keygen -lf /var/lib/repctl-agent/ssh_host_ed25519_key.pub)"
	echo "rows: $(psql_p "SELECT count(*) FROM artists") $(psql_c client1 "SELECT count(*) FROM artists")"
}
keys_state >"$WORK/before-down"
say "down + up of both stacks"
t=$(date +%s)
c_client1 down -t 30 >/dev/null 2>&1 || fail "client1: down"
c_primary down -t 60 >/dev/null 2>&1 || fail "primary: down"
c_primary up -d >/dev/null 2>&1 || fail "primary: up -d"
c_client1 up -d >/dev/null 2>&1 || fail "client1: up -d"
pass "down + up of both stacks ($(($(date +%s) - t))s)"
wait_for 120 "primary: db healthy again" is_healthy "$P_PRIMARY" db
wait_for 120 "client1: db and agent healthy again" bash -c "[[ \$(docker inspect --format '{{.State.Health.Status}}' $(cid "$P_CLIENT1" db) $(cid "$P_CLIENT1" agent) | sort -u) == healthy ]]"
wait_for 60 "primary: the coordinator answers again" rx status
keys_state >"$WORK/after-down"
if diff "$WORK/before-down" "$WORK/after-down" >"$WORK/down.diff"; then
	pass "down + up keeps rows, syncs, the coordinator's key, known hosts and the agent's host key"
else
	fail "down + up keeps rows, syncs, the coordinator's key, known hosts and the agent's host key"
	sed 's/^/#   /' "$WORK/down.diff"
fi
psql_p "INSERT INTO artists (name) VALUES ('after restart primary')"
psql_c client1 "INSERT INTO artists (name) VALUES ('after restart client1')"
wait_for 120 "after down + up: primary -> client1" has_row client1 'after restart primary'
wait_for 120 "after down + up: client1 -> primary" has_row_p 'after restart client1'
echo "after restart" >"$MUSIC_P/after-restart.txt" && chown 1000:1000 "$MUSIC_P/after-restart.txt"
wait_for 90 "after down + up: a file reaches client1" has_file "$MUSIC_1/after-restart.txt" "$MUSIC_P/after-restart.txt"
wait_for 150 "primary: repctl healthy after down + up" is_healthy "$P_PRIMARY" repctl

# ---- 7. a third node ----------------------------------------------------------------------------
check "client-kit client3" make_kit client3 5433 2223
say "client3: up -d --build"
t=$(date +%s)
if c_client3 up -d --build >"$WORK/client3-up.log" 2>&1; then
	pass "client3: up -d --build ($(($(date +%s) - t))s)"
	wait_for 120 "client3: db and agent healthy" bash -c "[[ \$(docker inspect --format '{{.State.Health.Status}}' \$(docker ps -q --filter label=com.docker.compose.project=$P_CLIENT3) | sort -u) == healthy ]]"
	check "client3: the primary's steps of the kit's README.txt (onboard --folder=music)" primary_steps client3 5433 2223
	check "client3 is in the folder music" bash -c "cd '$D' && ${COMPOSE[*]} -p '$P_PRIMARY' exec -T repctl repctl list folders | grep -q client3"
	check "client3 got every artist of the primary" \
		test "$(psql_c client3 "SELECT count(*) FROM artists")" = "$(psql_p "SELECT count(*) FROM artists")"
	psql_c client3 "INSERT INTO artists (name) VALUES ('from client3')"
	wait_for 120 "a row inserted on client3 reaches client1 (through the primary)" has_row client1 'from client3'
	psql_c client1 "INSERT INTO artists (name) VALUES ('from client1 to 3')"
	wait_for 120 "a row inserted on client1 reaches client3" has_row client3 'from client1 to 3'
	check "client3 has the music of the others" has_file "$MUSIC_3/song-client1.flac" "$MUSIC_1/song-client1.flac"
	echo "from client3" >"$MUSIC_3/client3.txt" && chown 1000:1000 "$MUSIC_3/client3.txt"
	step sync folder music
	wait_for 60 "a file added on client3 reaches client1" has_file "$MUSIC_1/client3.txt" "$MUSIC_3/client3.txt"
else
	cat "$WORK/client3-up.log"
	fail "client3: up -d --build"
fi

# ---- the README's figures -----------------------------------------------------------------------
say "docker compose ps (primary):"
c_primary ps 2>&1 | sed 's/^/#   /'
say "repctl status:"
rx status 2>&1 | sed 's/^/#   /'
