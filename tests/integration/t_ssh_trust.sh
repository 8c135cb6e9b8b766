#!/usr/bin/env bash
# tests/integration/t_ssh_trust.sh - repctl keygen / trust and the SSH
# transport of the file sync (fs_ssh.c) against a real OpenSSH server on
# loopback.
#
# Proves:
#  - keygen creates an ed25519 key (0600, directory 0700) and KEY.pub, which
#    OpenSSH reads; it prints the public key line and the restricted
#    authorized_keys suggestion; run again it says "exists" and changes
#    nothing;
#  - trust refuses, with what/how messages and nothing written: an unknown
#    node, a node without ssh= (hint: update database ... ssh=), an invalid
#    ssh=, an unreachable port, a wrong --fingerprint, and no --fingerprint
#    when stdin is not a terminal (the fingerprint is shown);
#  - with the right --fingerprint the key is recorded as "[127.0.0.1]:PORT
#    ssh-ed25519 ..." (0600), which OpenSSH's own client accepts with
#    StrictHostKeyChecking=yes; a second trust says it is already known;
#  - on a terminal (script(1)) trust asks "accept? [y/N]": n writes nothing,
#    y records the key;
#  - ssh_exec_open (through a small C program linked with repctl's objects)
#    authenticates with the key and runs a command: output, exit status 3,
#    stdin data, byte counters and the remote stderr; it refuses an unknown
#    host key (fingerprint and 'repctl trust' in the message), a missing key
#    ('repctl keygen'), a key readable by others, a passphrase-protected key
#    (without prompting), and a key the node does not authorize; only
#    public-key authentication is ever attempted;
#  - after the server's host key is regenerated (same port): trust refuses
#    loudly (HOST KEY CHANGED, man-in-the-middle, --replace) even with the
#    new --fingerprint; ssh_exec_open refuses before authenticating (the
#    sshd log shows no login); --replace still needs the fingerprint
#    confirmed and refuses the old one; with --replace and the new
#    fingerprint the line is replaced (one line for the host) and
#    connections work again.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/common.sh"
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/pg.sh"
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/fixtures.sh"
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/sshd.sh"

pg_start META
fx_env META
fx_install
fx_add_node a META postgres
fx_add_node b META postgres
sshd_start N1
P=$SSHD_PORT_N1
KEY=$REPCTL_STATE_DIR/ssh/id_ed25519
KH=$REPCTL_STATE_DIR/ssh/known_hosts

# A value `update database` would refuse goes straight into the metadata.
set_ssh_raw() { pg_sql META postgres "UPDATE repctl.node SET ssh = '$2' WHERE name = '$1'"; }
set_ssh() {
	run_repctl update database "$1" ssh="$2"
	is "$RC" 0 "update database $1 ssh=$2"
}
sum() { if [[ -e $1 ]]; then sha256sum <"$1"; else echo absent; fi; }
mode() { stat -c %a "$1"; }

# ---- keygen ---------------------------------------------------------------------------
run_repctl keygen
is "$RC" 0 "keygen succeeds"
like "$OUT" "^created $KEY " "keygen says created, with the path"
is "$(mode "$KEY")" 600 "private key is mode 0600"
is "$(mode "$(dirname "$KEY")")" 700 "key directory is mode 0700"
ok test -s "$KEY.pub"
PUB=$(<"$KEY.pub")
like "$PUB" '^ssh-ed25519 AAAA[A-Za-z0-9+/=]+ repctl@' "KEY.pub is an ed25519 public key line"
is "$(ssh-keygen -y -f "$KEY" | awk '{print $1, $2}')" "$(awk '{print $1, $2}' <<<"$PUB")" \
	"OpenSSH reads the private key, and it matches KEY.pub"
has_str "$OUT" "$PUB" "keygen prints the public key line"
has_str "$OUT" "restrict,command=\"repctl agent\" $PUB" "... and the restricted authorized_keys line"
key_sum=$(sum "$KEY")
run_repctl keygen
is "$RC" 0 "keygen again succeeds"
like "$OUT" "^exists $KEY " "... says exists"
is "$(sum "$KEY")" "$key_sum" "... and leaves the key alone"
has_str "$OUT" "$PUB" "... and prints the same public key line"

sshd_authorize N1 "restrict $PUB"

# ---- trust: refusals before any host key -----------------------------------------------
refused trust zz
like "$ERR" "no node 'zz'" "unknown node: says so"

refused trust a
like "$ERR" "node 'a' has no ssh= setting" "no ssh=: says so"
has_str "$ERR" "repctl update database a ssh=user@host:port" "no ssh=: says how to set it"

set_ssh_raw b "$SSHD_USER@127.0.0.1:99999"
refused trust b
like "$ERR" "node 'b': invalid ssh target .*port '99999' is not a number" "invalid ssh=: names the bad port"

fx_closed_port
set_ssh b "$SSHD_USER@127.0.0.1:$FX_CLOSED_PORT"
refused trust b --fingerprint=SHA256:x
like "$ERR" "node 'b': cannot connect to .*127.0.0.1:$FX_CLOSED_PORT over SSH" "closed port: says it cannot connect, and where"
is "$(sum "$KH")" absent "no known-hosts file written so far"

# ---- trust: unknown key ----------------------------------------------------------------
set_ssh a "$SSHD_USER@127.0.0.1:$P"
FP=$(sshd_hostkey_fp N1)
like "$FP" '^SHA256:[A-Za-z0-9+/]{43}$' "harness: server fingerprint"

run_repctl trust a </dev/null
is "$RC" 1 "non-interactive trust without --fingerprint is refused"
has_str "$OUT" "presents host key $FP" "... after showing the fingerprint"
has_str "$ERR" "the host key of node 'a' is not known: $FP" "... the error names the fingerprint"
has_str "$ERR" "repctl trust a --fingerprint=$FP" "... and says how to confirm it"
is "$(sum "$KH")" absent "... nothing written"

ssh-keygen -q -t ed25519 -N '' -f "$TEST_TMP/other_key" >/dev/null
WRONG=$(ssh-keygen -l -E sha256 -f "$TEST_TMP/other_key.pub" | awk '{print $2}')
run_repctl trust a --fingerprint="$WRONG"
is "$RC" 1 "trust with a wrong --fingerprint is refused"
has_str "$ERR" "presents host key $FP, not $WRONG" "... naming both fingerprints"
like "$ERR" "nothing was written" "... saying nothing was written"
is "$(sum "$KH")" absent "... and writing nothing"

run_repctl trust a --fingerprint="$FP"
is "$RC" 0 "trust with the right --fingerprint succeeds"
has_str "$OUT" "recorded host key $FP of node 'a' in $KH" "... and says what it recorded where"
is "$(mode "$KH")" 600 "known-hosts file is mode 0600"
like "$(<"$KH")" "^\[127\.0\.0\.1\]:$P ssh-ed25519 AAAA" "entry is written as [127.0.0.1]:PORT ssh-ed25519 ..."
is "$(grep -c . "$KH")" 1 "... one line"
ok ssh-keygen -F "[127.0.0.1]:$P" -f "$KH"
# shellcheck disable=SC2317 # called through ok / fails
openssh_login() {
	ssh -F /dev/null -n -o BatchMode=yes -o StrictHostKeyChecking=yes \
		-o UserKnownHostsFile="$KH" -o GlobalKnownHostsFile=/dev/null \
		-o IdentitiesOnly=yes -o IdentityAgent=none -o ConnectTimeout=10 \
		-i "$KEY" -p "$P" "$SSHD_USER@127.0.0.1" true
}
ok openssh_login

kh_sum=$(sum "$KH")
run_repctl trust a </dev/null
is "$RC" 0 "trust of a known key succeeds without --fingerprint"
like "$OUT" "already known in $KH" "... says it is already known"
is "$(sum "$KH")" "$kh_sum" "... and changes nothing"
run_repctl trust a --fingerprint="${FP#SHA256:}"
is "$RC" 0 "--fingerprint without the SHA256: prefix is accepted"

# ---- trust on a terminal -----------------------------------------------------------------
if command -v script >/dev/null 2>&1; then
	mv "$KH" "$TEST_TMP/kh.saved"
	tty_trust() {
		printf '%s\n' "$1" | script -qec "$(printf '%q ' "$REPCTL" trust a)" /dev/null 2>&1 || true
	}
	out=$(tty_trust n)
	like "$out" 'accept\? \[y/N\]' "on a terminal trust asks accept? [y/N]"
	like "$out" "not accepted; nothing was written" "answer n: not accepted"
	is "$(sum "$KH")" absent "answer n: nothing written"
	out=$(tty_trust y)
	has_str "$out" "recorded host key $FP" "answer y: recorded"
	is "$(sum "$KH")" "$kh_sum" "answer y: the same line as with --fingerprint"
	rm -f -- "$TEST_TMP/kh.saved"
else
	note "script(1) not installed: terminal confirmation not tested"
fi

# ---- ssh_exec_open from C ----------------------------------------------------------------
OBJDIR=$ROOT/build
[[ $REPCTL == "$ROOT/repctl" ]] || OBJDIR=$(dirname "$REPCTL")
SAN_FLAGS=()
[[ $(basename "$OBJDIR") == build-asan ]] && SAN_FLAGS=("-fsanitize=address,undefined")
read -r -a PKGS <<<"$(sed -n 's/^PKGS *= *//p' "$ROOT/Makefile")"
cat >"$TEST_TMP/exec_test.c" <<'EOF'
/* exec_test HOST PORT USER IDENTITY KNOWN_HOSTS COMMAND [STDIN-DATA] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fs_ssh.h"

int
main(int argc, char **argv)
{
	struct ssh_target t;
	char err[4096], buf[256];
	struct ssh_conn *c;
	ssize_t n;
	int st;

	if (argc < 7)
		return 2;
	t.user = argv[3];
	t.host = argv[1];
	t.port = atoi(argv[2]);
	c = ssh_exec_open(&t, argv[4], argv[5], 10, argv[6], err, sizeof(err));
	if (c == NULL) {
		printf("error: %s\n", err);
		return 1;
	}
	if (argc > 7 && ssh_conn_write(c, argv[7], strlen(argv[7]), err, sizeof(err)) < 0) {
		printf("write error: %s\n", err);
		return 1;
	}
	if (argc > 7) {
		/* the reply to what we sent, then EOF: close our side first */
		n = ssh_conn_read(c, buf, sizeof(buf) - 1, err, sizeof(err));
		buf[n > 0 ? n : 0] = '\0';
		printf("out=%s\n", buf);
	} else {
		printf("out=");
		while ((n = ssh_conn_read(c, buf, sizeof(buf) - 1, err, sizeof(err))) > 0) {
			buf[n] = '\0';
			printf("%s", buf);
		}
		if (n < 0)
			printf("\nread error: %s", err);
		printf("\n");
	}
	printf("sent=%llu received=%llu\n", ssh_conn_sent(c), ssh_conn_received(c));
	printf("stderr=%s\n", ssh_conn_stderr(c));
	st = ssh_conn_close(c);
	printf("status=%d\n", st);
	return 0;
}
EOF
# linked with every repctl object but main.o, as the unit tests are
# shellcheck disable=SC2317 # called through ok
build_exec_test() {
	# the objects of today's sources only (a build directory may keep those of
	# files that moved), plus sql_embed.o, kit_embed.o, web_embed.o
	local objs=() c r
	for c in "$ROOT"/src/*/*.c; do
		r=${c#"$ROOT"/src/}
		objs+=("$OBJDIR/${r%.c}.o")
	done
	objs+=("$OBJDIR"/*_embed.o)
	# shellcheck disable=SC2046 # pkg-config output is a list of flags
	cc -std=c11 -D_GNU_SOURCE -Wall -Werror "${SAN_FLAGS[@]}" -I"$ROOT/include" \
		$(pkg-config --cflags "${PKGS[@]}") -o "$TEST_TMP/exec_test" "$TEST_TMP/exec_test.c" \
		"${objs[@]}" $(pkg-config --libs "${PKGS[@]}") -lm
}
ok build_exec_test
# xt IDENTITY KNOWN_HOSTS COMMAND [STDIN-DATA]: run it against N1, print what it says
xt() {
	"$TEST_TMP/exec_test" 127.0.0.1 "$P" "$SSHD_USER" "$@" 2>&1 | tee -a "$TEST_TMP/xt.all" || true
}

log_at=$(stat -c %s "$(sshd_logfile N1)")
out=$(xt "$KEY" "$KH" 'echo hello; exit 3')
like "$out" '^out=hello$' "exec: the command's output is read"
like "$out" '^status=3$' "exec: its exit status 3 is returned by close"
like "$out" '^sent=0 received=6$' "exec: bytes received are counted"
# shellcheck disable=SC2016 # $l is for the remote shell
out=$(xt "$KEY" "$KH" 'read l; echo "got $l"' ping$'\n')
like "$out" '^out=got ping$' "exec: data written reaches the command's stdin"
like "$out" '^sent=5 received=9$' "exec: bytes sent and received are counted"
like "$out" '^status=0$' "exec: exit status 0"
out=$(xt "$KEY" "$KH" 'echo oops >&2; exit 1')
like "$out" '^stderr=oops$' "exec: the remote stderr is kept"
like "$out" '^status=1$' "exec: exit status 1"
new_log=$(tail -c +$((log_at + 1)) "$(sshd_logfile N1)")
like "$new_log" "Accepted publickey for $SSHD_USER" "sshd log: the logins were by public key"

: >"$TEST_TMP/empty_kh"
out=$(xt "$KEY" "$TEST_TMP/empty_kh" 'echo hello')
like "$out" "^error: host key of .*127.0.0.1:$P is not known" "exec: an unknown host key is refused"
has_str "$out" "is not known: $FP" "... with its fingerprint"
has_str "$out" "repctl trust NODE" "... and the trust hint"
unlike "$out" 'out=hello' "... and nothing runs"

out=$(xt "$TEST_TMP/no_such_key" "$KH" 'echo hello')
like "$out" 'error: no SSH key at .*no_such_key' "exec: a missing key is named"
has_str "$out" "run 'repctl keygen'" "... with the keygen hint"

cp "$KEY" "$TEST_TMP/open_key"
chmod 644 "$TEST_TMP/open_key"
out=$(xt "$TEST_TMP/open_key" "$KH" 'echo hello')
like "$out" 'error: the SSH key .*open_key" is accessible by others \(mode 0644\)' "exec: a key readable by others is refused"

ssh-keygen -q -t ed25519 -N 'secret' -f "$TEST_TMP/locked_key" >/dev/null
out=$(xt "$TEST_TMP/locked_key" "$KH" 'echo hello')
like "$out" 'error: cannot load the SSH key .*locked_key": .*protected by a passphrase' "exec: a passphrase-protected key is refused (no prompt)"

log_at=$(stat -c %s "$(sshd_logfile N1)")
out=$(xt "$TEST_TMP/other_key" "$KH" 'echo hello')
like "$out" "error: .*127.0.0.1:$P refused the key .*other_key\" for user '$SSHD_USER'" "exec: a key the node does not authorize is refused"
has_str "$out" "authorized_keys" "... with the authorized_keys hint"
new_log=$(tail -c +$((log_at + 1)) "$(sshd_logfile N1)")
unlike "$new_log" 'password|keyboard-interactive' "sshd log: no password or keyboard-interactive attempt"

# ---- the server's host key changes --------------------------------------------------------
sshd_stop N1
sshd_new_hostkey N1
sshd_start N1
is "$SSHD_PORT_N1" "$P" "harness: restarted on the same port"
FP2=$(sshd_hostkey_fp N1)
ok test "$FP2" != "$FP"
kh_sum=$(sum "$KH")

run_repctl trust a </dev/null
is "$RC" 1 "changed key: trust is refused"
has_str "$ERR" "HOST KEY CHANGED for node 'a'" "... loudly"
has_str "$ERR" "man-in-the-middle" "... mentioning a man-in-the-middle"
has_str "$ERR" "it now presents $FP2" "... with the new fingerprint"
has_str "$ERR" "repctl trust a --replace" "... and the --replace hint"
is "$(sum "$KH")" "$kh_sum" "... nothing written"

run_repctl trust a --fingerprint="$FP2"
is "$RC" 1 "changed key: refused even with the new --fingerprint, without --replace"
has_str "$ERR" "HOST KEY CHANGED" "... saying the key changed"
is "$(sum "$KH")" "$kh_sum" "... nothing written"

log_at=$(stat -c %s "$(sshd_logfile N1)")
out=$(xt "$KEY" "$KH" 'echo hello')
like "$out" "^error: HOST KEY CHANGED for .*127.0.0.1:$P: it now presents" "exec: a changed host key is refused"
has_str "$out" "it now presents $FP2" "... with the new fingerprint"
has_str "$out" "man-in-the-middle" "... mentioning a man-in-the-middle"
has_str "$out" "repctl trust NODE --replace" "... with the --replace hint"
new_log=$(tail -c +$((log_at + 1)) "$(sshd_logfile N1)")
unlike "$new_log" 'Accepted|Failed publickey|Postponed publickey' "exec: no authentication was attempted with the changed server"
unlike "$out" 'out=hello' "... and nothing ran"
fails openssh_login

run_repctl trust a --replace </dev/null
is "$RC" 1 "--replace without --fingerprint off a terminal is refused"
has_str "$ERR" "the host key of node 'a' has changed: $FP2" "... naming the new fingerprint"
has_str "$ERR" "repctl trust a --replace --fingerprint=$FP2" "... and how to confirm it"
run_repctl trust a --replace --fingerprint="$FP"
is "$RC" 1 "--replace with the old fingerprint is refused"
has_str "$ERR" "presents host key $FP2, not $FP" "... naming both"
is "$(sum "$KH")" "$kh_sum" "... nothing written"

run_repctl trust a --replace --fingerprint="$FP2"
is "$RC" 0 "--replace with the new fingerprint succeeds"
has_str "$OUT" "replaced: recorded host key $FP2 of node 'a'" "... and says it replaced the key"
is "$(grep -c "^\[127\.0\.0\.1\]:$P " "$KH")" 1 "... one line left for the host"
is "$(mode "$KH")" 600 "... file still 0600"
ok openssh_login
out=$(xt "$KEY" "$KH" 'echo hello; exit 3')
like "$out" '^out=hello$' "exec works again with the new key recorded"
like "$out" '^status=3$' "... exit status 3"
run_repctl trust a </dev/null
like "$OUT" "already known" "trust now says already known"
unlike "$(<"$TEST_TMP/xt.all")" 'Sanitizer|runtime error:' "no sanitizer report from exec_test"

done_testing
