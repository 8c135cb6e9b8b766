#!/bin/sh
# scripts/deps.sh - install the Debian 12 packages needed to build and test
# repctl.  Idempotent: when everything is present it prints one line
# ("deps: all present") and exits 0 without touching apt.
# Must run as root to install; as non-root it only reports what is missing.
# Plain POSIX sh on purpose: the Makefile runs it as "sh scripts/deps.sh".
set -eu

# python3-prometheus-client: its parser reads the console's /metrics in
# tests/integration/t_console_api.sh (which has its own strict parser too).
# docker-compose: only its parser is used, by tests/integration/t_docker.sh
# (`docker-compose config` of docker/*.yml); no Docker engine is needed.
PKGS="build-essential pkg-config
libpq-dev libconfig-dev libssh-dev libzstd-dev libssl-dev libmicrohttpd-dev libcmocka-dev
python3-prometheus-client
postgresql-15 postgresql-client-15
openssh-server openssh-client
iproute2 procps ca-certificates
docker-compose"

is_installed() {
	status=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) || return 1
	case $status in
	*"install ok installed"*) return 0 ;;
	*) return 1 ;;
	esac
}

missing=""
for p in $PKGS; do
	is_installed "$p" || missing="$missing $p"
done
missing=${missing# }

if [ -z "$missing" ]; then
	echo "deps: all present"
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing packages (run as root to install): $missing" >&2
	exit 1
fi

# Did the default cluster exist before we installed anything?
had_main_cluster=0
[ -d /etc/postgresql/15/main ] && had_main_cluster=1
installing_pg=0
case " $missing " in
*" postgresql-15 "*) installing_pg=1 ;;
esac

echo "deps: installing: $missing"
apt-get update
# shellcheck disable=SC2086 # word splitting of the package list is wanted
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing

# Debian's postgresql-15 postinst creates and starts cluster 15/main on port
# 5432.  Our tests use their own throw-away clusters, so if we just caused it
# to be created, stop it (but leave it in place).
if [ "$installing_pg" = 1 ] && [ "$had_main_cluster" = 0 ] &&
	[ -d /etc/postgresql/15/main ] && command -v pg_ctlcluster >/dev/null 2>&1; then
	echo "deps: stopping default cluster 15/main created by the install"
	pg_ctlcluster 15 main stop || true
fi

echo "deps: done"
