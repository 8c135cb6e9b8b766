#!/usr/bin/env bash
# tests/integration/t_fs_nobatch.sh - an agent that does not batch (one that
# does not announce "commit" in its HELLO answer, as before batched
# durability) is still driven correctly, one file at a time.  Local node
# cava, remote node juke over a real sshd; juke's agent= is a proxy
# (python) in front of the real `repctl agent` that strips the feature from
# the HELLO answer and logs every request it forwards.
#
# Proves:
#  - files added on cava reach juke, and changes on both sides converge
#    (trees equal);
#  - the coordinator sends such an agent no F_COMMIT and no deferred
#    PUT_END: every PUT_END is the plain one (answered at once).
# shellcheck disable=SC2317 # helpers are called through wait_until / ok
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/common.sh"
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/fs.sh"

fs_setup
A=$TEST_TMP/a B=$TEST_TMP/b
fs_add_folder music "$A" "$B"
PROXY=$TEST_TMP/nobatch.py
cat >"$PROXY" <<'PY'
#!/usr/bin/env python3
# Frames: 4-byte big-endian payload length, type, flags, payload.  The first
# ACK from the agent (the HELLO answer "NODE\tcommit") loses its feature
# field; each request is logged as "TYPE PAYLOAD-PREFIX" for PUT_END (14).
import subprocess, sys, threading
child = subprocess.Popen(['@REPCTL@', 'agent'], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
rd, wr = sys.stdin.buffer, sys.stdout.buffer
log = open('@LOG@', 'a')
def read_frame(f):
    hdr = f.read(6)
    if len(hdr) < 6:
        return None
    return hdr, f.read(int.from_bytes(hdr[:4], 'big'))
def upstream():
    first = True
    while True:
        fr = read_frame(child.stdout)
        if fr is None:
            sys.exit(0)
        hdr, body = fr
        if first and hdr[4] == 2 and hdr[5] == 0:
            body = body.split(b'\t')[0]
            hdr = len(body).to_bytes(4, 'big') + hdr[4:6]
            first = False
        wr.write(hdr + body)
        wr.flush()
threading.Thread(target=upstream, daemon=True).start()
while True:
    fr = read_frame(rd)
    if fr is None:
        child.stdin.close()
        child.wait()
        sys.exit(0)
    log.write('%d %r\n' % (fr[0][4], fr[1][:10] if fr[0][4] == 14 else b''))
    log.flush()
    child.stdin.write(fr[0] + fr[1])
    child.stdin.flush()
PY
sed -i "s|@REPCTL@|$REPCTL|; s|@LOG@|$TEST_TMP/requests.log|" "$PROXY"
chmod 755 "$PROXY"
run_repctl update database juke agent="$PROXY"
is "$RC" 0 "juke's agent is the proxy that hides batching"

fs_mutate "$A" 1 60 add >/dev/null
run_sync music
ok test "$SYNC_FILES" -gt 40
trees_equal "files added on cava reach juke" "$A" "$B"
fs_mutate "$B" 2 40 >/dev/null
fs_mutate "$A" 3 40 >/dev/null
ok sync_until_quiet music 4
trees_equal "changes on both sides converge" "$A" "$B"
is "$(fs_count_lines "$TEST_TMP/requests.log" '^21 ')" 0 "no F_COMMIT was sent"
is "$(fs_count_lines "$TEST_TMP/requests.log" "^14 b'defer'")" 0 "no deferred PUT_END was sent"
ok test "$(fs_count_lines "$TEST_TMP/requests.log" "^14 b''")" -gt 40

done_testing
