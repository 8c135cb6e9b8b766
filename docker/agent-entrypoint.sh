#!/bin/sh
# docker/agent-entrypoint.sh - entrypoint of a client's agent container
# (target "agent" of docker/Dockerfile; README, "Docker").
#
# An OpenSSH server through which the primary's coordinator reaches this
# client's music folder, and nothing else: public keys only, one user, no
# forwarding, no TTY, no sftp, and the only command is
# `repctl agent --root=ROOT` (ForceCommand, and restrict,command="..." on
# every key as well).  It
#   1. checks that ROOT is a directory (the mounted music folder);
#   2. makes the ed25519 host key on first start, in REPCTL_SSH_HOST_KEY_DIR
#      (a volume, so `repctl trust` stays valid across rebuilds), and prints
#      its fingerprint for `repctl trust NODE --fingerprint=...`;
#   3. writes the authorized keys from REPCTL_AUTHORIZED_KEYS (the line(s)
#      `repctl keygen` printed on the primary; options already on a line are
#      replaced) and the file REPCTL_AUTHORIZED_KEYS_FILE if it exists;
#      refuses to start without any key;
#   4. writes the sshd configuration, has sshd check it (-t), and
#   5. exec sshd in the foreground, logging to stderr.
#
# Environment (defaults for the image):
#   REPCTL_AGENT_ROOT=/music           the folder the agent may serve
#   REPCTL_AGENT_USER=repctl           the only user that may log in
#   REPCTL_AUTHORIZED_KEYS             public key line(s)
#   REPCTL_AUTHORIZED_KEYS_FILE=/etc/repctl/authorized_keys
#   REPCTL_SSH_PORT=2222               REPCTL_SSH_LISTEN=0.0.0.0
#   REPCTL_SSH_HOST_KEY_DIR=/var/lib/repctl-agent
#   REPCTL_SSHD_RUN_DIR=/run/repctl-sshd   (generated config and keys file)
#   REPCTL_SSH_LOG_LEVEL=INFO
#   REPCTL_BIN=/usr/local/bin/repctl   the agent binary (full path)
#   SSHD_BIN=/usr/sbin/sshd
# Runs as root (sshd needs it to switch to the user).  Plain POSIX sh.
set -eu

ROOT=${REPCTL_AGENT_ROOT:-/music}
AUSER=${REPCTL_AGENT_USER:-repctl}
KEYS=${REPCTL_AUTHORIZED_KEYS:-}
KEYS_FILE=${REPCTL_AUTHORIZED_KEYS_FILE:-/etc/repctl/authorized_keys}
PORT=${REPCTL_SSH_PORT:-2222}
LISTEN=${REPCTL_SSH_LISTEN:-0.0.0.0}
KEYDIR=${REPCTL_SSH_HOST_KEY_DIR:-/var/lib/repctl-agent}
RUNDIR=${REPCTL_SSHD_RUN_DIR:-/run/repctl-sshd}
LOGLEVEL=${REPCTL_SSH_LOG_LEVEL:-INFO}
BIN=${REPCTL_BIN:-/usr/local/bin/repctl}
SSHD=${SSHD_BIN:-/usr/sbin/sshd}

say() { printf 'agent-entrypoint: %s\n' "$*" >&2; }
die() {
	say "error: $*"
	exit 1
}

if [ $# -gt 0 ]; then
	exec "$@"
fi

[ "$(id -u)" -eq 0 ] || die "must run as root (sshd switches to the user $AUSER)"
id "$AUSER" >/dev/null 2>&1 || die "no user '$AUSER' (REPCTL_AGENT_USER)"
case $ROOT in
/*) ;;
*) die "REPCTL_AGENT_ROOT must be an absolute path, not '$ROOT'" ;;
esac
case $PORT in
'' | *[!0-9]*) die "REPCTL_SSH_PORT must be a port number, not '$PORT'" ;;
esac
[ -d "$ROOT" ] || die "$ROOT is not a directory: mount the music folder there"
# Docker creates a missing host directory of a bind mount owned by root: an
# empty folder owned by root is given to the user; anything else the user
# cannot write is refused, saying what to run.
if [ "$(stat -c %u "$ROOT")" -eq 0 ] && [ "$(id -u "$AUSER")" -ne 0 ] &&
	[ -z "$(ls -A "$ROOT" 2>/dev/null)" ]; then
	chown "$AUSER:$(id -gn "$AUSER")" "$ROOT" ||
		die "cannot give the empty folder $ROOT to $AUSER"
	say "the empty folder $ROOT${REPCTL_MUSIC_HOST_DIR:+ (the host's $REPCTL_MUSIC_HOST_DIR)} belonged to root: now owned by $AUSER (uid $(id -u "$AUSER"))"
fi
if command -v setpriv >/dev/null 2>&1 &&
	! setpriv --reuid="$(id -u "$AUSER")" --regid="$(id -g "$AUSER")" --clear-groups test -w "$ROOT"; then
	die "the music folder $ROOT${REPCTL_MUSIC_HOST_DIR:+ (the host's $REPCTL_MUSIC_HOST_DIR)} is not writable by $AUSER (uid $(id -u "$AUSER")).
On the host, as root: chown -R $(id -u "$AUSER"):$(id -g "$AUSER") ${REPCTL_MUSIC_HOST_DIR:-THE_MUSIC_DIR}
(or rebuild with REPCTL_UID/REPCTL_GID = the folder's owner), then start again"
fi
[ -x "$BIN" ] || die "$BIN is not executable (REPCTL_BIN)"
# Every character of these goes into the configuration and the command line.
for v in "$ROOT" "$BIN" "$AUSER" "$LISTEN"; do
	case $v in
	*[!A-Za-z0-9_./:@+-]*) die "'$v' holds a character this script does not quote (space, quote, ...)" ;;
	esac
done

# ---- host key --------------------------------------------------------------------
(umask 077 && mkdir -p "$KEYDIR")
hostkey=$KEYDIR/ssh_host_ed25519_key
if [ ! -f "$hostkey" ]; then
	ssh-keygen -q -t ed25519 -N '' -C "repctl-agent@$(hostname 2>/dev/null || echo agent)" \
		-f "$hostkey" >/dev/null || die "cannot create the host key $hostkey"
	say "created the host key $hostkey"
fi
chmod 600 "$hostkey"
fp=$(ssh-keygen -l -E sha256 -f "$hostkey.pub" | awk '{print $2}')
say "host key fingerprint: $fp (on the primary: repctl trust NODE --fingerprint=$fp)"

# ---- authorized keys ---------------------------------------------------------------
mkdir -p "$RUNDIR"
chmod 755 "$RUNDIR"
# A bind mount of a missing file (authorized_keys beside the compose file) makes Docker create
# an empty directory in its place, owned by root.
if [ -d "$KEYS_FILE" ]; then
	if [ -n "$(ls -A "$KEYS_FILE" 2>/dev/null)" ]; then
		die "$KEYS_FILE is a directory, not a file of public keys.
On the host: replace it (authorized_keys beside the compose file) by a file holding the line 'repctl keygen' printed on the primary"
	fi
	if [ -n "$KEYS" ]; then
		say "note: $KEYS_FILE is an empty directory (Docker made it: the file authorized_keys beside the compose file was missing); using REPCTL_AUTHORIZED_KEYS. To use the file instead, on the host as root: rmdir authorized_keys, then write the key line into it"
	else
		die "no authorized key: $KEYS_FILE is an empty directory that Docker made because the file was missing.
On the host, as root, beside the compose file: rmdir authorized_keys && echo 'ssh-ed25519 AAAA... repctl@PRIMARY' > authorized_keys
(the line 'repctl keygen' printed on the primary), or set REPCTL_AUTHORIZED_KEYS; then start again"
	fi
	KEYS_FILE=/nonexistent
fi
command="$BIN agent --root=$ROOT"
tmp=$RUNDIR/authorized_keys.tmp
{
	printf '%s\n' "$KEYS"
	if [ -f "$KEYS_FILE" ]; then
		cat "$KEYS_FILE"
		echo
	fi
} | awk -v opts="restrict,command=\"$command\"" '
	/^[ \t]*(#|$)/ { next }
	{
		# drop any options before the key type; ours replace them
		for (i = 1; i <= NF; i++)
			if ($i ~ /^(ssh-|ecdsa-|sk-)/) {
				line = $i
				for (j = i + 1; j <= NF; j++)
					line = line " " $j
				print opts " " line
				n++
				next
			}
		bad++
	}
	END {
		if (bad)
			printf "agent-entrypoint: warning: %d line(s) without a public key ignored\n", bad > "/dev/stderr"
	}' >"$tmp"
nkeys=$(wc -l <"$tmp" | tr -d ' ')
if [ "$nkeys" -eq 0 ]; then
	rm -f "$tmp"
	die "no authorized key: set REPCTL_AUTHORIZED_KEYS to the public key line that 'repctl keygen' prints on the primary (or provide $KEYS_FILE)"
fi
chmod 644 "$tmp"
mv -f "$tmp" "$RUNDIR/authorized_keys"
say "$nkeys key(s) may run only: $command"

# ---- sshd --------------------------------------------------------------------------
conf=$RUNDIR/sshd_config
cat >"$conf" <<EOF
# generated by agent-entrypoint.sh: repctl agent for $ROOT, nothing else
Port $PORT
ListenAddress $LISTEN
HostKey $hostkey
PidFile $RUNDIR/sshd.pid
AuthorizedKeysFile $RUNDIR/authorized_keys
AuthorizedPrincipalsFile none
AuthenticationMethods publickey
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
HostbasedAuthentication no
PermitEmptyPasswords no
PermitRootLogin no
UsePAM no
StrictModes yes
AllowUsers $AUSER
ForceCommand $command
DisableForwarding yes
PermitTTY no
PermitUserRC no
PermitUserEnvironment no
PermitTunnel no
X11Forwarding no
AllowTcpForwarding no
AllowAgentForwarding no
AllowStreamLocalForwarding no
UseDNS no
PrintMotd no
PrintLastLog no
ClientAliveInterval 30
ClientAliveCountMax 4
LogLevel $LOGLEVEL
EOF
chmod 644 "$conf"
# privilege separation directory of Debian's sshd
mkdir -p /run/sshd
chmod 755 /run/sshd
if ! out=$("$SSHD" -t -f "$conf" 2>&1); then
	die "sshd refuses the configuration $conf: $out"
fi
say "sshd listening on $LISTEN:$PORT for user $AUSER"
exec "$SSHD" -D -e -f "$conf"
