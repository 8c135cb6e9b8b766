#!/usr/bin/env bash
# tests/integration/t_fs_hungpeer.sh - a folder sync never waits for ever on
# a remote agent that hangs, and never gives up an agent that is only slow.
# Local node cava, remote node juke over a real sshd; juke's agent= points at
# a proxy (python) in front of the real `repctl agent` that misbehaves on
# cue.  ssh.io_timeout is 5 s.
#
# Proves:
#  (a) hang: the agent answers HELLO, then never answers INDEX_REQ (the
#      connection stays up, as with a stopped process or a stuck disk): the
#      run fails within io_timeout + a margin (not for ever), naming the node
#      and ssh.io_timeout; cava's tree is untouched; the same when the agent
#      stops reading in the middle of a 24 MB file (the sender's writes
#      block): the run fails in bounded time and nothing half-written is
#      left under a real name on juke;
#  (b) slow: the agent takes 9 s (almost twice io_timeout) to answer the
#      index request but pings while it works (F_PING every second): the run
#      succeeds and copies the new files (the ping frames themselves, and the
#      agent's heartbeat that sends them, are covered by test_fs_proto and by
#      every remote sync of the other tests);
#  (c) after every failure, with the plain agent back, the folder syncs and
#      both trees are equal: nothing was lost.
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
for f in one.txt two.txt; do
	printf 'content of %s\n' "$f" >"$A/$f"
done
run_sync music
is "$SYNC_FILES" 2 "base: 2 files copied"
trees_equal "base: trees equal" "$A" "$B"

CONF=$TEST_TMP/io.conf
printf 'ssh = { io_timeout = 5; };\n' >"$CONF"

FAKE=$TEST_TMP/fake
mkdir -p "$FAKE"
cat >"$FAKE/proxy.py" <<'PY'
#!/usr/bin/env python3
# A proxy in front of the real `repctl agent`: frames are 4-byte big-endian
# payload length, type, flags, payload.  Its mode is the name it was started
# under:
#   plain    forward everything
#   hang     forward HELLO; after INDEX_REQ, answer nothing, ever
#   hangput  forward until a PUT_DATA frame, then stop reading (the sender blocks)
#   slow     hold the answer to INDEX_REQ for 9 s, pinging every second
import os, select, subprocess, sys, threading, time
MODE = os.path.basename(sys.argv[0])
AGENT = '@REPCTL@'
PING, INDEX_REQ, PUT_DATA = 20, 4, 12
rd, wr = sys.stdin.buffer, sys.stdout.buffer
child = subprocess.Popen([AGENT, 'agent'], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
with open(os.path.join(os.path.dirname(os.path.abspath(sys.argv[0])), 'pids'), 'a') as f:
    f.write('%d %d\n' % (os.getpid(), child.pid))
lock = threading.Lock()

def stall():
    # misbehave until the coordinator gives up (our stdout's reader is gone),
    # then go: never outlive the run (at most 120 s)
    p = select.poll()
    p.register(1, select.POLLERR | select.POLLHUP)
    end = time.time() + 120
    while time.time() < end and not p.poll(500):
        pass
    child.kill()
    os._exit(0)
index_asked = threading.Event()

def read_frame(f):
    hdr = b''
    while len(hdr) < 6:
        c = f.read(6 - len(hdr))
        if not c:
            return None
        hdr += c
    n = int.from_bytes(hdr[:4], 'big')
    body = b''
    while len(body) < n:
        c = f.read(n - len(body))
        if not c:
            return None
        body += c
    return hdr + body

def send(frame):
    with lock:
        wr.write(frame)
        wr.flush()

def upstream():
    while True:
        fr = read_frame(child.stdout)
        if fr is None:
            os._exit(0)
        if index_asked.is_set() and MODE == 'slow':
            for _ in range(9):
                send((0).to_bytes(4, 'big') + bytes([PING, 0]))
                time.sleep(1)
        index_asked.clear()
        send(fr)

threading.Thread(target=upstream, daemon=True).start()
while True:
    fr = read_frame(rd)
    if fr is None:
        child.stdin.close()
        child.wait()
        sys.exit(0)
    t = fr[4]
    if t == INDEX_REQ:
        if MODE == 'hang':
            stall()
        index_asked.set()
    if t == PUT_DATA and MODE == 'hangput':
        stall()
    child.stdin.write(fr)
    child.stdin.flush()
PY
sed -i "s|@REPCTL@|$REPCTL|" "$FAKE/proxy.py"
chmod 755 "$FAKE/proxy.py"
for mode in plain hang hangput slow; do
	ln -s proxy.py "$FAKE/$mode"
done
# the proxies (and their agents) are ours: stop any still running at the end
stop_proxies() {
	local p
	[[ -f $FAKE/pids ]] || return 0
	for p in $(cat "$FAKE/pids"); do kill "$p" 2>/dev/null || true; done
}
cleanup_push stop_proxies

use_agent() {
	run_repctl update database juke agent="$1"
	is "$RC" 0 "juke's agent= is now $(basename "$1")"
}

# within N LO HI MSG: assert LO <= N <= HI (seconds)
within() {
	if (($1 >= $2 && $1 <= $3)); then
		pass "$4 ($1 s, in [$2, $3])"
	else
		fail "$4" "$1 s, not in [$2, $3]"
	fi
}

# The sync with the given agent and io_timeout 5 s: sets ELAPSED (seconds).
timed_sync() {
	local want=$1 t0
	t0=$(date +%s)
	run_sync music "$want" REPCTL_CONFIG="$CONF"
	ELAPSED=$(($(date +%s) - t0))
	note "the run took $ELAPSED s"
}

# ---- (plain) the proxy itself works --------------------------------------------------------
use_agent "$FAKE/plain"
printf 'through the proxy\n' >"$A/proxied.txt"
timed_sync 0
is "$SYNC_FILES" 1 "plain proxy: the new file is copied"
trees_equal "plain proxy: trees equal" "$A" "$B"

# ---- (a) hang on INDEX_REQ -----------------------------------------------------------------
use_agent "$FAKE/hang"
printf 'while juke hangs\n' >"$A/during-hang.txt"
SUM_A=$(tree_sum "$A")
timed_sync 1
within "$ELAPSED" 4 30 "hang: the run gives up after io_timeout, in bounded time"
like "$SYNC_ERR" "juke" "hang: the message names the node"
like "$SYNC_ERR" "ssh.io_timeout" "hang: the message names the setting"
is "$(tree_sum "$A")" "$SUM_A" "hang: cava's tree is untouched"
ok test ! -e "$B/during-hang.txt"

# ---- (a) hang in the middle of a file --------------------------------------------------------
use_agent "$FAKE/hangput"
head -c $((24 << 20)) /dev/urandom >"$A/big.bin"
SUM_A=$(tree_sum "$A")
timed_sync 1
within "$ELAPSED" 4 30 "hangput: the run gives up after io_timeout, in bounded time"
like "$SYNC_ERR" "juke" "hangput: the message names the node"
is "$(tree_sum "$A")" "$SUM_A" "hangput: cava's tree is untouched"
ok test ! -e "$B/big.bin"

# ---- (b) slow but pinging ----------------------------------------------------------------------
use_agent "$FAKE/slow"
timed_sync 0
within "$ELAPSED" 8 40 "slow: the answer took longer than io_timeout"
is "$SYNC_FILES" 2 "slow: the run succeeds: during-hang.txt and big.bin copied"
trees_equal "slow: trees equal" "$A" "$B"

# ---- (c) back to the real agent: nothing lost --------------------------------------------------
use_agent "$REPCTL"
printf 'after\n' >"$B/from-juke.txt"
run_sync music
is "$SYNC_FILES" 1 "plain agent: juke's new file comes back"
trees_equal "end: trees equal" "$A" "$B"
ok test -f "$A/during-hang.txt"
is "$(sha256sum <"$A/big.bin")" "$(sha256sum <"$B/big.bin")" "big.bin intact on juke"

done_testing
