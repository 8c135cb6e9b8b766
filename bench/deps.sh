#!/bin/sh
# bench/deps.sh - install the Debian 12 packages the benchmark needs on top of
# scripts/deps.sh: Bucardo 5.6 and PL/Perl and pglogical 2 (the peer
# replicators), rsync and unison (the peer file syncs), pgbench
# (postgresql-contrib).  Idempotent; as non-root it only reports what is
# missing.  PL/Perl is pinned to the installed postgresql-15's version so that
# the server binaries are not upgraded under running clusters; pglogical
# (postgresql-15-pglogical) is built against the major version only and
# installs without touching them.
set -eu

PKGS="bucardo libdbd-pg-perl libdbix-safe-perl libboolean-perl libpod-parser-perl
libencode-locale-perl postgresql-15-pglogical rsync unison postgresql-contrib-15 postgresql-plperl-15 python3
python3-psycopg2
openssh-client openssh-server"

is_installed() {
	status=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) || return 1
	case $status in
	*"install ok installed"*) return 0 ;;
	*) return 1 ;;
	esac
}

missing=""
for p in $PKGS; do
	# postgresql-contrib-15 is a virtual name on Debian 12 (pgbench ships
	# in postgresql-15 / postgresql-client-15): accept the binary itself
	if [ "$p" = postgresql-contrib-15 ]; then
		[ -x /usr/lib/postgresql/15/bin/pgbench ] && continue
		p=postgresql-contrib
	fi
	is_installed "$p" || missing="$missing $p"
done
missing=${missing# }

if [ -z "$missing" ]; then
	echo "bench deps: all present"
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "bench deps: missing packages (run as root to install): $missing" >&2
	exit 1
fi

args=""
for p in $missing; do
	if [ "$p" = postgresql-plperl-15 ]; then
		v=$(dpkg-query -W -f='${Version}' postgresql-15 2>/dev/null || true)
		if [ -n "$v" ] && apt-cache madison postgresql-plperl-15 | grep -q " $v "; then
			p="postgresql-plperl-15=$v"
		fi
	fi
	args="$args $p"
done

echo "bench deps: installing:$args"
# shellcheck disable=SC2086 # word splitting of the package list is wanted
if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $args; then
	apt-get update
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $args
fi
echo "bench deps: done"
