#!/bin/sh
# docker/entrypoint.sh - the coordinator container's entrypoint
# (/usr/local/bin/docker-entrypoint.sh in the image; README, "Docker").
#
# Without arguments:
#   1. reads the effective configuration (`repctl config`: REPCTL_CONFIG,
#      then REPCTL_META, REPCTL_STATE_DIR, REPCTL_NODE);
#   2. creates the state directory (mode 0700) when missing, refuses to start
#      when the music folder (REPCTL_MUSIC_ROOT, default /music, if it exists)
#      is not writable (Docker made it for root: the message says to chown
#      it), and with
#      REPCTL_META_PASSWORD_FILE (or REPCTL_META_PASSWORD) writes the
#      metadata database's password into the secrets file, under the host,
#      port, database and user of `meta`;
#   3. waits until the metadata database's server accepts connections
#      (pg_isready, every second, at most REPCTL_WAIT_SECONDS, default 60),
#      or gives up with exit 1 and a message saying what it waited for;
#   4. `repctl install` (creates or upgrades the schema; safe every time);
#   5. `repctl keygen` (REPCTL_KEYGEN=0 skips it): the file sync key, made
#      once; its public key line is printed to the log;
#   6. nothing for a pid file left by a killed container: `repctl start`
#      trusts only the lock a live coordinator holds on it; then
#   7. exec `repctl start --foreground`: the coordinator becomes this
#      process, logs to stderr, stops cleanly on SIGTERM (`docker stop`),
#      reloads on SIGHUP.
#
# With arguments, runs them instead: `repctl ...`, an absolute path, sh or
# bash as given, anything else as repctl's arguments, so that
# `docker compose run --rm repctl status` runs `repctl status` (control
# commands reach the coordinator through the metadata database, so they work
# from another container too; `docker compose exec repctl repctl ...` is the
# usual way).
#
# Environment: REPCTL_META, REPCTL_STATE_DIR, REPCTL_NODE, REPCTL_CONFIG
# (repctl's own), REPCTL_WAIT_SECONDS, REPCTL_META_PASSWORD_FILE,
# REPCTL_META_PASSWORD, REPCTL_KEYGEN, REPCTL_BIN (default: repctl on PATH).
# Plain POSIX sh: the image has no bash requirement.
set -eu

REPCTL_BIN=${REPCTL_BIN:-repctl}
WAIT=${REPCTL_WAIT_SECONDS:-60}

say() { printf 'docker-entrypoint: %s\n' "$*" >&2; }
die() {
	say "error: $*"
	exit 1
}

if [ $# -gt 0 ]; then
	case $1 in
	repctl | */* | sh | bash) exec "$@" ;;
	*) exec "$REPCTL_BIN" "$@" ;;
	esac
fi

case $WAIT in
'' | *[!0-9]*) die "REPCTL_WAIT_SECONDS must be a number of seconds, not '$WAIT'" ;;
esac

# ---- 1. the effective configuration --------------------------------------------
if ! cfg=$("$REPCTL_BIN" config 2>&1); then
	die "the configuration is not usable:
$cfg"
fi
# cfg_get KEY : the string value of KEY in `repctl config`'s output
cfg_get() {
	printf '%s\n' "$cfg" | sed -n "s/^$1 = \"\\(.*\\)\"\$/\\1/p" | head -n 1
}
meta=$(cfg_get meta)
state_dir=$(cfg_get state_dir)
secrets_file=$(cfg_get secrets_file)
say "metadata database: $meta; state directory: $state_dir${REPCTL_NODE:+; node: $REPCTL_NODE}"

# ---- 2. state directory, metadata password -------------------------------------
if [ ! -d "$state_dir" ]; then
	(umask 077 && mkdir -p "$state_dir") ||
		die "cannot create the state directory $state_dir (uid $(id -u)): mount a volume there that this user may write"
fi
[ -w "$state_dir" ] ||
	die "the state directory $state_dir is not writable by uid $(id -u): chown the volume to it"

# conn_get KEY : KEY's value in the (normalised, space separated) conninfo
conn_get() {
	printf ' %s\n' "$meta" | sed -n "s/.* $1=\\('[^']*'\\|[^ ]*\\).*/\\1/p" | sed "s/^'\\(.*\\)'\$/\\1/"
}
# pgpass_escape TEXT : backslash before ':' and '\'
pgpass_escape() {
	printf '%s' "$1" | sed 's/[\\:]/\\&/g'
}

password=''
if [ -n "${REPCTL_META_PASSWORD_FILE:-}" ]; then
	[ -r "$REPCTL_META_PASSWORD_FILE" ] ||
		die "REPCTL_META_PASSWORD_FILE=$REPCTL_META_PASSWORD_FILE cannot be read"
	password=$(head -n 1 "$REPCTL_META_PASSWORD_FILE")
elif [ -n "${REPCTL_META_PASSWORD:-}" ]; then
	password=$REPCTL_META_PASSWORD
fi
if [ -n "$password" ]; then
	h=$(conn_get host)
	p=$(conn_get port)
	u=$(conn_get user)
	d=$(conn_get dbname)
	[ -n "$h" ] || h=localhost
	case $h in /*) h=localhost ;; esac # a socket directory: libpq matches "localhost"
	[ -n "$p" ] || p=5432
	[ -n "$u" ] || u=$(id -un)
	[ -n "$d" ] || d=$u
	key="$(pgpass_escape "$h"):$(pgpass_escape "$p"):$(pgpass_escape "$d"):$(pgpass_escape "$u"):"
	tmp="$secrets_file.entrypoint.$$"
	(
		umask 077
		if [ -f "$secrets_file" ]; then
			# every other line as it was (grep -F: the key is text, not a pattern)
			grep -v -F -e "$key" "$secrets_file" || true
		fi
		printf '%s%s\n' "$key" "$(pgpass_escape "$password")"
	) >"$tmp" || die "cannot write $tmp"
	chmod 600 "$tmp"
	mv -f "$tmp" "$secrets_file" || die "cannot replace $secrets_file"
	say "metadata password stored in $secrets_file for $h:$p:$d:$u"
fi

# ---- 2b. the music folder ------------------------------------------------------
# Docker creates a missing host directory of a bind mount owned by root; the
# coordinator (uid REPCTL_UID) could then never write the music there.
music=${REPCTL_MUSIC_ROOT:-/music}
if [ -d "$music" ] && [ ! -w "$music" ]; then
	die "the music folder $music${REPCTL_MUSIC_HOST_DIR:+ (the host's $REPCTL_MUSIC_HOST_DIR)} is not writable by uid $(id -u) (owner: uid $(stat -c %u "$music" 2>/dev/null || echo '?')).
On the host, as root: chown -R $(id -u):$(id -g) ${REPCTL_MUSIC_HOST_DIR:-THE_MUSIC_DIR}
(or rebuild with REPCTL_UID/REPCTL_GID = the folder's owner), then start again"
fi

# ---- 3. wait for the metadata database -----------------------------------------
pg_isready_bin=$(command -v pg_isready 2>/dev/null || true)
if [ -z "$pg_isready_bin" ]; then
	for f in /usr/lib/postgresql/*/bin/pg_isready; do
		[ -x "$f" ] && pg_isready_bin=$f
	done
fi
[ -n "$pg_isready_bin" ] || die "pg_isready not found (install postgresql-client)"

start=$(date +%s)
tries=0
while :; do
	rc=0
	out=$("$pg_isready_bin" -d "$meta" -t 2 2>&1) || rc=$?
	[ "$rc" -eq 0 ] && break
	if [ "$rc" -eq 3 ]; then
		die "cannot check the metadata database ($meta): $out"
	fi
	now=$(date +%s)
	if [ $((now - start)) -ge "$WAIT" ]; then
		die "gave up after ${WAIT}s (REPCTL_WAIT_SECONDS) waiting for the metadata database ($meta): $out"
	fi
	if [ $((tries % 10)) -eq 0 ]; then
		say "waiting for the metadata database ($meta): $out"
	fi
	tries=$((tries + 1))
	sleep 1
done
say "the metadata database accepts connections"

# ---- 4. install ----------------------------------------------------------------
"$REPCTL_BIN" install || die "'repctl install' failed (see above)"

# ---- 5. the file sync key ------------------------------------------------------
if [ "${REPCTL_KEYGEN:-1}" != 0 ]; then
	"$REPCTL_BIN" keygen || say "warning: 'repctl keygen' failed; file sync over SSH needs a key"
fi

# ---- 6. (no pid file clean-up: `repctl start` ignores a pid file nobody holds
# locked, and refuses, naming it, when a coordinator of this metadata database
# runs anywhere, in this container or another)

# ---- 7. the coordinator --------------------------------------------------------
say "starting the coordinator"
exec "$REPCTL_BIN" start --foreground
