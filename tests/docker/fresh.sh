#!/usr/bin/env bash
# tests/docker/fresh.sh - `make check-fresh`: the README's "Two commands" on a
# fresh Debian 12 machine, the first time: a container from debian:12-slim
# (the stand-in of ../shared/tools/docker/setup.sh) with nothing but `make`
# (the README's first line) and a copy of the checkout runs `make demo`,
# which must install the packages, build and replicate in one go, then
# `make check-unit` (the build and the unit tests; the whole `make check`
# under sanitizers is what CI runs on the host).  Run as root.
#
# Proves: the Makefile builds on a machine where pkg-config and the -dev
# packages appear only during the same `make` (issue: flags read at parse
# time); the demo reaches "replicating"; the unit tests pass there.
# Removes its container (and its anonymous volumes) by ID, also on failure.
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
say() { printf '# [%4ds] %s\n' "$(($(date +%s) - T0))" "$*"; }
die() {
	printf 'check-fresh: error: %s\n' "$*" >&2
	exit 1
}

[[ $(id -u) -eq 0 ]] || die "run as root (the shared setup script installs and starts Docker)"
if [[ -z $SETUP || ! -r $SETUP ]]; then
	# no Docker here at all: said loudly, not a failure of the project
	echo "check-fresh: SKIPPED: no Docker setup script (looked for ../shared/tools/docker/setup.sh beside the project and /work/shared/tools/docker/setup.sh; set REPCTL_DOCKER_SETUP)" >&2
	exit 0
fi
bash "$SETUP"

CID=
cleanup() {
	local rc=$?
	set +e
	[[ -n $CID ]] && docker rm -f -v "$CID" >/dev/null
	if ((rc == 0)); then say "passed"; else say "FAILED (exit $rc)"; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

CID=$(docker run -d --name "repctl-fresh-$$" debian:12-slim sleep infinity)
# the checkout as a user has it (no build trees, no demo state)
(cd "$ROOT" && tar -cf - --exclude=./build --exclude=./build-asan --exclude=./.demo \
	--exclude=./.git --exclude=./repctl --exclude=./tests/logs .) |
	docker exec -i "$CID" sh -c 'mkdir -p /src && tar -C /src -xf -'
say "fresh debian:12-slim: apt-get install make, then make demo"
docker exec "$CID" sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq make >/dev/null' ||
	die "apt-get install make failed"
docker exec "$CID" sh -c 'cd /src && make demo' >"/tmp/repctl-fresh-$$.log" 2>&1 || {
	tail -n 60 "/tmp/repctl-fresh-$$.log"
	rm -f "/tmp/repctl-fresh-$$.log"
	die "'make demo' failed on a fresh machine"
}
tail -n 15 "/tmp/repctl-fresh-$$.log" | sed 's/^/#   /'
rm -f "/tmp/repctl-fresh-$$.log"
say "make demo: ok; make demo-stop; make check-unit"
docker exec "$CID" bash -o pipefail -c 'cd /src && make demo-stop >/dev/null && make check-unit 2>&1 | tail -n 5' ||
	die "'make check-unit' failed on a fresh machine"
