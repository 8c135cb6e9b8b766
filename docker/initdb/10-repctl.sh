#!/bin/sh
# docker/initdb/10-repctl.sh - run once by the postgres image when it
# creates the cluster (mounted into /docker-entrypoint-initdb.d by
# docker/docker-compose.yml): the role repctl, with the password of the
# secret REPCTL_META_PASSWORD_FILE (default /run/secrets/repctl_meta_password),
# and the metadata database repctl owned by it.  `repctl install` (the
# coordinator's entrypoint) then creates the schema in it.
#
# The postgres image sets POSTGRES_USER and POSTGRES_DB and points psql at
# its temporary server; outside the image PGHOST / PGPORT do (the tests).
set -eu
pwfile=${REPCTL_META_PASSWORD_FILE:-/run/secrets/repctl_meta_password}
if [ ! -r "$pwfile" ]; then
	echo "10-repctl.sh: error: cannot read the password file $pwfile" >&2
	exit 1
fi
pw=$(head -n 1 "$pwfile")
psql -X -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" \
	--dbname "${POSTGRES_DB:-postgres}" -v pw="$pw" <<'SQL'
SELECT format('CREATE ROLE repctl LOGIN PASSWORD %L', :'pw')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'repctl') \gexec
SELECT 'CREATE DATABASE repctl OWNER repctl'
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'repctl') \gexec
SQL
echo "10-repctl.sh: role repctl and database repctl ready"
