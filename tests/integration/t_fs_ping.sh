#!/usr/bin/env bash
# tests/integration/t_fs_ping.sh - the agent's heartbeat, for real: a
# remote agent busy with a long request pings the coordinator, but only a
# coordinator that said it reads pings.  Local node cava, remote node juke
# over a real sshd; juke's agent= is a proxy (python) in front of the real
# `repctl agent`, started with REPCTL_TEST_SCAN_DELAY=8 (its scan takes 8 s
# more, as on a slow disk), that logs the type of every frame the agent
# sends.  Its mode is the name it was started under:
#   ping     forward everything
#   oldpeer  drop the HELLO request's feature field (as a coordinator built
#            before the heartbeat sends it)
#
# Proves:
#  - ping: with ssh.io_timeout = 4 s, an 8 s scan does not fail the run: the
#    agent itself sent F_PING frames while it scanned, and the new file is
#    copied;
#  - oldpeer: the agent sends no F_PING at all to a coordinator that does
#    not announce "ping" (an older reader would take it for the answer), and
#    the run succeeds when its io_timeout is long enough;
#  - ping off, same 4 s io_timeout: the run fails naming ssh.io_timeout
#    (so the first case passes because of the pings, not by luck);
#  - a coordinator whose binary file was replaced under it (an upgrade)
#    still syncs the folder: its local agent is its own image.
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
echo "first" >"$A/one.txt"
run_sync music
trees_equal "base: trees equal" "$A" "$B"

FAKE=$TEST_TMP/fake
mkdir -p "$FAKE"
cat >"$FAKE/ping" <<'PY'
#!/usr/bin/env python3
# Frames: 4-byte big-endian payload length, type, flags, payload.
import os, subprocess, sys, threading
MODE = os.path.basename(sys.argv[0])
LOG = os.path.join(os.path.dirname(os.path.abspath(sys.argv[0])), MODE + '.log')
env = dict(os.environ, REPCTL_TEST_SCAN_DELAY='8')
child = subprocess.Popen(['@REPCTL@', 'agent'], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
rd, wr = sys.stdin.buffer, sys.stdout.buffer
log = open(LOG, 'a')
def read_frame(f):
    hdr = f.read(6)
    if len(hdr) < 6:
        return None
    return hdr, f.read(int.from_bytes(hdr[:4], 'big'))
def upstream():
    while True:
        fr = read_frame(child.stdout)
        if fr is None:
            os._exit(0)
        log.write('up %d\n' % fr[0][4])
        log.flush()
        wr.write(fr[0] + fr[1])
        wr.flush()
threading.Thread(target=upstream, daemon=True).start()
while True:
    fr = read_frame(rd)
    if fr is None:
        child.stdin.close()
        child.wait()
        sys.exit(0)
    hdr, body = fr
    if hdr[4] == 1 and hdr[5] == 0:
        fields = body.split(b'\t')
        log.write('hello %d %r\n' % (len(fields), fields[7] if len(fields) > 7 else b''))
        if MODE == 'oldpeer':
            body = b'\t'.join(fields[:7])
            hdr = len(body).to_bytes(4, 'big') + hdr[4:6]
    log.flush()
    child.stdin.write(hdr + body)
    child.stdin.flush()
PY
sed -i "s|@REPCTL@|$REPCTL|" "$FAKE/ping"
chmod 755 "$FAKE/ping"
ln -s ping "$FAKE/oldpeer"
SHORT=$TEST_TMP/short.conf LONG=$TEST_TMP/long.conf
printf 'ssh = { io_timeout = 4; };\n' >"$SHORT"
printf 'ssh = { io_timeout = 30; };\n' >"$LONG"
pings() { grep -c '^up 20$' "$FAKE/$1.log" || true; }

# ---- ping: the coordinator reads pings, the agent sends them -----------------------------
run_repctl update database juke agent="$FAKE/ping"
is "$RC" 0 "juke's agent is the slow proxy"
echo "second" >"$A/two.txt"
run_sync music 0 REPCTL_CONFIG="$SHORT"
is "$(cat "$B/two.txt" 2>/dev/null)" "second" "ping: an 8 s scan under a 4 s io_timeout succeeds and copies"
like "$(cat "$FAKE/ping.log")" "hello 8 b'ping'" "ping: the coordinator announces 'ping' in its HELLO"
n=$(pings ping)
ok test "$n" -ge 2
note "ping: $n F_PING frame(s) from the agent"

# ---- oldpeer: no feature field, no ping ---------------------------------------------------
run_repctl update database juke agent="$FAKE/oldpeer"
is "$RC" 0 "juke's agent is the proxy that hides the feature"
echo "third" >"$A/three.txt"
run_sync music 0 REPCTL_CONFIG="$LONG"
is "$(cat "$B/three.txt" 2>/dev/null)" "third" "oldpeer: the run succeeds (io_timeout 30 s)"
like "$(cat "$FAKE/oldpeer.log")" "hello 8 b'ping'" "oldpeer: the proxy saw the field it dropped"
is "$(pings oldpeer)" 0 "oldpeer: the agent sent no F_PING to a coordinator that did not ask"

# ---- without pings, the short io_timeout does fire ------------------------------------------
echo "fourth" >"$A/four.txt"
run_sync music 1 REPCTL_CONFIG="$SHORT"
like "$SYNC_ERR$SYNC_OUT" "io_timeout" "no pings, 4 s io_timeout: the run fails naming ssh.io_timeout"
ok test ! -e "$B/four.txt"

# ---- the plain agent: everything converges ---------------------------------------------------
run_repctl update database juke agent="$REPCTL"
is "$RC" 0 "juke's agent is the plain one again"
run_sync music
trees_equal "afterwards: trees equal" "$A" "$B"

# ---- an upgrade replaces the binary under a running coordinator -----------------------------
# (as apt does: a new file renamed over the old name).  The coordinator's
# local agent is its own image, not whatever the path names now: before,
# it exec'ed "PATH (deleted)" and every run of the folder failed until a
# restart.
BIN=$TEST_TMP/bin
mkdir -p "$BIN"
cp "$REPCTL" "$BIN/repctl"
runs_before=$(fs_node_sql "SELECT count(*) FROM repctl.folder_run WHERE folder = 'music' AND ok")
"$BIN/repctl" start >"$TEST_TMP/start.out" 2>&1
cleanup_push "'$REPCTL' stop >/dev/null 2>&1 || true"
first_run() { (($(fs_node_sql "SELECT count(*) FROM repctl.folder_run WHERE folder = 'music' AND ok") > runs_before)); }
ok wait_until 40 first_run
cp "$REPCTL" "$BIN/repctl.new"
mv -f "$BIN/repctl.new" "$BIN/repctl"
echo "after the upgrade" >"$A/five.txt"
five_on_b() { [[ $(cat "$B/five.txt" 2>/dev/null) == "after the upgrade" ]]; }
ok wait_until 40 five_on_b
run_repctl stop
is "$RC" 0 "stop"

done_testing
