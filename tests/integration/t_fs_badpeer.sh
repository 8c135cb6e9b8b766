#!/usr/bin/env bash
# tests/integration/t_fs_badpeer.sh - file sync property 6: bad input from a
# peer is refused, nothing is written outside the folder and nothing is lost
# inside.  Local node cava, remote node juke over a real sshd.
#
# Proves:
#  (a) missing folder marker: juke's folder emptied with its .repctl (an
#      unmounted disk): the sync fails naming the marker and the node, cava
#      keeps every file (nothing deleted, nothing in its trash) and nothing is
#      written into juke's empty directory; the same with cava's marker gone
#      (juke untouched), every time (20 runs: the local agent hangs up after
#      refusing HELLO, and the coordinator must say so, not die of SIGPIPE);
#      `add folder` with the local directory missing (10 runs) is added and
#      summarised, and that folder does not sync; once the marker is
#      recreated by hand the folder syncs again;
#  (b) host keys: a node whose host key was never trusted, and juke after its
#      server's host key was replaced: the sync is refused with the key's
#      fingerprint in the message, before authenticating (no login in the
#      sshd log), and nothing is written on either side; after `trust
#      --replace` with the new fingerprint it works again;
#  (c) a hostile index: juke's agent= points at a fake agent (python) that
#      speaks the framed protocol and answers INDEX_REQ with tombstones that
#      dominate every file of cava plus one unsafe path: "../../etc/evil",
#      "../evil-rel", "sub/../../evil-nested", an absolute path into the test
#      directory, "/etc/passwd", a tombstone "../victim.txt", a tombstone for
#      an absolute path, the marker ".repctl/folder", a control character.
#      Each sync fails naming the unsafe path; nothing appears outside the
#      folder (sentinels, part files), the victim file outside survives, and
#      cava's tree and trash are unchanged (the tombstones before the bad
#      line were not applied: the whole index is refused); the coordinator
#      asks the fake nothing beyond HELLO, INDEX_REQ and BYE;
#      a safe path that crosses a symlink on cava ("linkdir/evil" with
#      linkdir -> a directory outside, "linkfile" -> /etc/passwd) is refused
#      by cava's agent: nothing is written through the links;
#  (d) symlinks in juke's folder pointing outside (to /etc, /etc/passwd and
#      up the tree) are not followed: nothing from /etc appears on cava, and
#      the links stay links on juke; the same for links on cava;
#  (e) a hostile coordinator: `repctl agent` driven directly through pipes
#      refuses a block request through a symlinked directory (even with the
#      right hash of /etc/passwd), writes, deletes and conflict renames
#      with ".." or absolute paths, and a folder path with no marker.
# shellcheck disable=SC2317 # helpers are called through wait_until / ok
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/common.sh"
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/fs.sh"

fs_setup
# deeper folders, so that "../.." from them stays inside the test directory
A=$TEST_TMP/x/y/a B=$TEST_TMP/x/y/b
fs_add_folder music "$A" "$B"
mkdir -p "$A/artist/album"
for f in keep1.txt keep2.txt artist/album/song.flac; do
	printf 'content of %s\n' "$f" >"$A/$f"
done
run_sync music
is "$SYNC_FILES" 3 "base: 3 files copied"
trees_equal "base: trees equal" "$A" "$B"
SUM_A=$(tree_sum "$A")
no_trash() { [[ ! -d $1/.repctl/trash ]] || [[ -z $(find "$1/.repctl/trash" -type f) ]]; }
ok no_trash "$A"
logins() { fs_count_lines "$(sshd_logfile "$1")" 'Accepted publickey'; }

# ---- (a) missing marker --------------------------------------------------------------------
mv "$B" "$TEST_TMP/b.saved"
mkdir "$B" # the empty mount point
run_sync music 1
like "$SYNC_ERR" "folder marker $B/.repctl/folder is missing on node 'juke'" "missing marker: the message names the marker and the node"
like "$SYNC_ERR" 'mounted' "missing marker: the message suggests an unmounted disk"
is "$(tree_sum "$A")" "$SUM_A" "missing marker: cava keeps every file"
ok no_trash "$A"
is "$(find "$B" -mindepth 1 | wc -l)" 0 "missing marker: nothing written into juke's empty directory"
rmdir "$B"
mv "$TEST_TMP/b.saved" "$B"

rm "$A/.repctl/folder"
SUM_B=$(tree_sum "$B")
run_sync music 1
like "$SYNC_ERR" "folder marker $A/.repctl/folder is missing on node 'cava'" "local marker missing: refused too"
is "$(tree_sum "$B")" "$SUM_B" "local marker missing: juke untouched"
is "$(tree_sum "$A")" "$SUM_A" "local marker missing: cava untouched"
# The local agent hangs up after refusing HELLO; the coordinator must report
# that, not die writing to the closed pipe (SIGPIPE, exit 141, no message).
# A race: repeat it.
res=()
for i in $(seq 20); do
	rc=0
	"$REPCTL" sync folder music >/dev/null 2>"$TEST_TMP/rep.err" || rc=$?
	grep -q "folder marker $A/.repctl/folder is missing" "$TEST_TMP/rep.err" || rc="$rc(no message)"
	res+=("$rc")
done
is "$(printf '%s\n' "${res[@]}" | sort | uniq -c | tr -s ' \n' ' ')" " 20 1 " "local marker missing, 20 runs: each exits 1 with the message"
is "$(tree_sum "$B")" "$SUM_B" "local marker missing: juke still untouched"
# the same race in `add folder` when the local directory is missing (the
# disk is not mounted yet): the folder is added, marked on the other node
res=()
for i in $(seq 10); do
	rc=0
	out=$("$REPCTL" add folder "nomount$i" "nodes=cava:$TEST_TMP/not-mounted,juke:$B" 2>&1) || rc=$?
	[[ $out == *"marker created on 1 of 2 node(s)"* ]] || rc="$rc(no summary)"
	res+=("$rc")
done
is "$(printf '%s\n' "${res[@]}" | sort | uniq -c | tr -s ' \n' ' ')" " 10 0 " "add folder with the local directory missing, 10 runs: each exits 0 with its summary"
ok test ! -e "$TEST_TMP/not-mounted"
run_sync nomount1 1
like "$SYNC_ERR" "folder $TEST_TMP/not-mounted does not exist on node 'cava'" "a folder whose directory is missing does not sync"
printf 'music\n' >"$A/.repctl/folder"
run_sync music
is "$SYNC_FILES/$SYNC_DELETED" 0/0 "marker recreated by hand: the folder syncs again, nothing to do"

# ---- (b) host keys --------------------------------------------------------------------------
sshd_start fsn2
sshd_authorize fsn2 "$(cat "$REPCTL_STATE_DIR/ssh/id_ed25519.pub")"
run_repctl add database stranger conn="$(pg_conninfo "$FS_META" jukedb)" \
	ssh="$SSHD_USER@127.0.0.1:$(sshd_port fsn2)" agent="$REPCTL"
is "$RC" 0 "add database stranger (its host key never trusted)"
A2=$TEST_TMP/a2 B2=$TEST_TMP/b2
mkdir -p "$A2" "$B2/.repctl"
printf 'other\n' >"$B2/.repctl/folder"
printf 'from cava\n' >"$A2/file.txt"
run_repctl add folder other "nodes=cava:$A2,stranger:$B2"
is "$RC" 0 "add folder other"
fp2=$(sshd_hostkey_fp fsn2)
run_sync other 1
has_str "$SYNC_ERR" "$fp2" "unknown host key: refused with its fingerprint"
has_str "$SYNC_ERR" "repctl trust" "unknown host key: the message says how to trust it"
has_str "$SYNC_ERR" "--fingerprint=$fp2" "unknown host key: ... with the fingerprint to check"
is "$(find "$B2" -mindepth 1 -not -path "$B2/.repctl" -not -path "$B2/.repctl/folder" | wc -l)" 0 "unknown host key: nothing written on the node"
is "$(logins fsn2)" 0 "unknown host key: refused before authenticating"

before=$(logins "$FS_SSHD")
sshd_stop "$FS_SSHD"
sshd_new_hostkey "$FS_SSHD"
sshd_start "$FS_SSHD"
fpnew=$(sshd_hostkey_fp "$FS_SSHD")
printf 'new on cava\n' >"$A/new-during-mitm.txt"
SUM_B=$(tree_sum "$B")
run_sync music 1
has_str "$SYNC_ERR" "$fpnew" "changed host key: refused with the new fingerprint"
is "$(tree_sum "$B")" "$SUM_B" "changed host key: nothing written on juke"
is "$(logins "$FS_SSHD")" "$before" "changed host key: refused before authenticating"
ok test -f "$A/new-during-mitm.txt"
run_repctl trust juke --replace --fingerprint="$fpnew"
is "$RC" 0 "trust juke --replace with the new fingerprint"
run_sync music
is "$SYNC_FILES" 1 "after trust --replace the folder syncs again"
rm "$A/new-during-mitm.txt"
run_sync music
is "$SYNC_DELETED" 1 "and a deletion goes through"
SUM_A=$(tree_sum "$A")
trees_equal "(b) done: trees equal" "$A" "$B"

# ---- (c) a hostile index --------------------------------------------------------------------
FAKE=$TEST_TMP/fake
mkdir -p "$FAKE"
cat >"$FAKE/agent.py" <<'PY'
#!/usr/bin/env python3
# A fake `repctl agent`: frames are 4-byte big-endian payload length, type,
# flags, payload.  Answers HELLO and BYE with ACK, INDEX_REQ with the index of
# its mode (the name it was started under), and refuses everything else
# (never serves a block).  Logs every request type to $LOG.
import hashlib, os, sys
MODE = os.path.basename(sys.argv[0])
LOG = os.path.join(os.path.dirname(os.path.abspath(sys.argv[0])), 'requests.log')
TT = os.environ.get('FAKE_TEST_TMP') or '@TEST_TMP@'
A = '@A@'
HELLO, ACK, ERROR, INDEX_REQ, INDEX, INDEX_END, BYE = 1, 2, 3, 4, 5, 6, 18
rd, wr = sys.stdin.buffer, sys.stdout.buffer

def read_exact(n):
    b = b''
    while len(b) < n:
        c = rd.read(n - len(b))
        if not c:
            sys.exit(0)
        b += c
    return b

def send(t, payload=b''):
    wr.write(len(payload).to_bytes(4, 'big') + bytes([t, 0]) + payload)
    wr.flush()

def line(path, deleted=False, data=b'evil\n', vv='{"juke": 1000}'):
    if deleted:
        return '%s\t1\t0\t1700000000000000000\t0\t0\t644\t-\t%s\t-' % (path, vv)
    h = hashlib.sha256(data).hexdigest()
    return '%s\t0\t%d\t1700000000000000000\t0\t0\t644\t%s\t%s\t%d:%s' % (
        path, len(data), h, vv, len(data), h)

def index():
    # tombstones that dominate every file of cava: applied, they would delete it
    out = []
    for dp, dn, fn in os.walk(A):
        if dp == A and '.repctl' in dn:
            dn.remove('.repctl')
        for f in fn:
            rel = os.path.relpath(os.path.join(dp, f), A)
            out.append(line(rel, deleted=True, vv='{"cava": 1000, "juke": 1000}'))
    out.append(line('aaa-new-from-fake.txt'))
    bad = {
        'etc': '../../etc/evil',
        'rel': '../evil-rel',
        'nested': 'sub/../../evil-nested',
        'abs': TT + '/evil-abs',
        'passwd': '/etc/passwd',
        'victimrel': None,
        'victimabs': None,
        'marker': None,
        'ctrl': 'evil\x01ctrl',
        'link': None,
    }[MODE]
    if bad is not None:
        out.append(line(bad))
    elif MODE == 'victimrel':
        out.append(line('../../../victim.txt', deleted=True))
    elif MODE == 'victimabs':
        out.append(line(TT + '/victim.txt', deleted=True))
    elif MODE == 'marker':
        out.append(line('.repctl/folder', deleted=True, vv='{"cava": 1000, "juke": 1000}'))
    elif MODE == 'link':
        out = [line('linkdir/evil'), line('linkfile')]
    return ('\n'.join(out) + '\n').encode()

with open(LOG, 'a') as log:
    while True:
        hdr = read_exact(6)
        n, t = int.from_bytes(hdr[:4], 'big'), hdr[4]
        read_exact(n)
        log.write('%s %d\n' % (MODE, t))
        log.flush()
        if t == HELLO:
            send(ACK, b'juke')
        elif t == INDEX_REQ:
            send(INDEX, index())
            send(INDEX_END, b'0\t0\t0\t0\t0')
        elif t == BYE:
            send(ACK)
            sys.exit(0)
        else:
            send(ERROR, b'fake agent: refused')
PY
sed -i "s|@TEST_TMP@|$TEST_TMP|; s|@A@|$A|" "$FAKE/agent.py"
chmod 755 "$FAKE/agent.py"
printf 'do not delete me\n' >"$TEST_TMP/victim.txt"
SUM_B=$(tree_sum "$B")
sentinels_absent() {
	local p
	for p in /tmp/etc/evil "$TEST_TMP/evil-rel" "$TEST_TMP/x/evil-rel" "$TEST_TMP/x/y/evil-rel" \
		"$TEST_TMP/evil-nested" "$TEST_TMP/x/evil-nested" "$TEST_TMP/x/y/evil-nested" \
		"$TEST_TMP/evil-abs" "$A$TEST_TMP/evil-abs" "$TEST_TMP/outside/evil"; do
		[[ ! -e $p ]] || { echo "exists: $p"; return 1; }
	done
	# no part file anywhere in the test directory but under the folders
	p=$(find "$TEST_TMP" /etc /tmp/etc -name '*.repctl-part' 2>/dev/null | head -n 1)
	[[ -z $p ]] || { echo "part file: $p"; return 1; }
	[[ $(cat "$TEST_TMP/victim.txt") == 'do not delete me' ]] || { echo "victim changed"; return 1; }
}
ok test ! -e /tmp/etc/evil
passwd_sum=$(sha256sum </etc/passwd)

declare -A WANT=(
	[etc]="unsafe path '../../etc/evil': '..' component"
	[rel]="unsafe path '../evil-rel'"
	[nested]="unsafe path 'sub/../../evil-nested'"
	[abs]="unsafe path '$TEST_TMP/evil-abs': absolute path"
	[passwd]="unsafe path '/etc/passwd': absolute path"
	[victimrel]="unsafe path '../../../victim.txt'"
	[victimabs]="unsafe path '$TEST_TMP/victim.txt': absolute path"
	[marker]="unsafe path '.repctl/folder': inside the folder's own state directory"
	[ctrl]="unsafe path 'evil\\\\x01ctrl': control character"
)
for mode in etc rel nested abs passwd victimrel victimabs marker ctrl; do
	cp "$FAKE/agent.py" "$FAKE/$mode"
	run_repctl update database juke agent="$FAKE/$mode"
	is "$RC" 0 "juke's agent= is now the fake agent ($mode)"
	: >"$FAKE/requests.log"
	run_sync music 1
	like "$SYNC_ERR" "node 'juke': its index holds an unsafe path, refused: ${WANT[$mode]}" "$mode: refused, naming the path"
	is "$(tree_sum "$A")" "$SUM_A" "$mode: cava's files all there, none changed"
	ok no_trash "$A"
	ok test ! -e "$A/aaa-new-from-fake.txt"
	ok test -f "$A/.repctl/folder"
	ok sentinels_absent
	is "$(awk '{print $2}' "$FAKE/requests.log" | sort -un | tr '\n' ' ')" "1 4 18 " "$mode: only HELLO, INDEX_REQ and BYE were asked of the fake"
done
is "$(sha256sum </etc/passwd)" "$passwd_sum" "/etc/passwd unchanged"
is "$(tree_sum "$B")" "$SUM_B" "juke's real folder untouched by all that"

# a safe-looking path through a symlink on cava
mkdir -p "$TEST_TMP/outside"
ln -s "$TEST_TMP/outside" "$A/linkdir"
ln -s /etc/passwd "$A/linkfile"
cp "$FAKE/agent.py" "$FAKE/link"
run_repctl update database juke agent="$FAKE/link"
: >"$FAKE/requests.log"
run_sync music 1
like "$SYNC_ERR" "linkdir/evil" "link: the path through a symlinked directory is refused (named)"
like "$SYNC_ERR" "linkfile" "link: the write onto a symlink to /etc/passwd is refused (named)"
ok sentinels_absent
is "$(sha256sum </etc/passwd)" "$passwd_sum" "link: /etc/passwd unchanged"
is "$(readlink "$A/linkfile")" /etc/passwd "link: cava's symlink is still the same symlink"
is "$(find "$TEST_TMP/outside" -mindepth 1 | wc -l)" 0 "link: nothing written in the directory outside"
rm "$A/linkdir" "$A/linkfile"

run_repctl update database juke agent="$REPCTL"
is "$RC" 0 "juke's agent= back to repctl"
run_sync music
is "$SYNC_FILES/$SYNC_DELETED/$SYNC_CONFLICTS" 0/0/0 "with the real agent: nothing to do, nothing was lost"
trees_equal "(c) done: trees equal" "$A" "$B"

# ---- (d) symlinks pointing outside ------------------------------------------------------------
ln -s /etc "$B/etclink"
ln -s /etc/passwd "$B/pwlink"
ln -s ../../.. "$B/uplink"
mkdir -p "$B/artist/album"
ln -s /etc/hostname "$B/artist/album/cover.jpg"
ln -s /etc "$A/a-etclink"
printf 'a real file\n' >"$B/real.txt"
run_sync music
is "$SYNC_FILES" 1 "symlinks: only the real file is copied"
ok test -f "$A/real.txt"
for l in etclink pwlink uplink artist/album/cover.jpg; do
	ok test ! -e "$A/$l" -a ! -L "$A/$l"
done
ok test ! -e "$B/a-etclink" -a ! -L "$B/a-etclink"
is "$(find "$A" -path "$A/.repctl" -prune -o \( -name passwd -o -name hostname -o -name 'shadow*' \) -print | wc -l)" 0 "nothing from /etc appears on cava"
is "$(readlink "$B/etclink")" /etc "the link on juke is still a link"
trees_equal "(d) trees equal (links are not synced)" "$A" "$B"

# ---- (e) a hostile coordinator, straight at the agent --------------------------------------------
mkdir -p "$TEST_TMP/agentdir"
cat >"$FAKE/coord.py" <<'PY'
# A hostile coordinator: drives `repctl agent` through pipes.  Prints one
# line per request: NAME REPLY-TYPE TEXT (2 = ACK, 3 = ERROR, 8 = BLOCK).
import hashlib, subprocess, sys
repctl, root, tt = sys.argv[1], sys.argv[2], sys.argv[3]
p = None
def start():
    global p
    if p is not None:
        p.stdin.close()
        p.wait()
    p = subprocess.Popen([repctl, 'agent'], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
def recv():
    hdr = p.stdout.read(6)
    if len(hdr) < 6:
        return -1, 0, b'(the agent closed the pipe)'
    n = int.from_bytes(hdr[:4], 'big')
    return hdr[4], hdr[5], p.stdout.read(n)
def call(t, payload):
    p.stdin.write(len(payload).to_bytes(4, 'big') + bytes([t, 0]) + payload)
    p.stdin.flush()
    return recv()
def show(t, f, body):
    return '%d %s' % (t, body.decode(errors='replace') if f == 0 else '(compressed)')
def hello(path):
    return call(1, ('1\tmusic\t%s\tjuke\t0\t\t30' % path).encode())
start()
print('hello-nomarker', show(*hello(tt + '/agentdir')))
start()  # a refused HELLO ends the agent
print('hello', show(*hello(root)))
t = call(4, b'')[0]  # INDEX_REQ: INDEX ... INDEX_END
while t not in (6, 3, -1):
    t = recv()[0]
data = open('/etc/passwd', 'rb').read()[:64]
h = hashlib.sha256(data).hexdigest()
print('block-etclink', show(*call(7, ('etclink/passwd\t0\t%d\t%s' % (len(data), h)).encode())))
print('block-dotdot', show(*call(7, ('../../../../../etc/passwd\t0\t%d\t%s' % (len(data), h)).encode())))
print('block-abs', show(*call(7, ('/etc/passwd\t0\t%d\t%s' % (len(data), h)).encode())))
ev = b'evil\n'
eh = hashlib.sha256(ev).hexdigest()
for name, path in (('put-dotdot', '../../../evil-put'), ('put-abs', tt + '/evil-put'),
                   ('put-link', 'etclink/evil-put')):
    line = '%s\t0\t5\t1700000000000000000\t0\t0\t644\t%s\t{"cava": 1}\t5:%s' % (path, eh, eh)
    print(name, show(*call(11, line.encode())))
print('delete-dotdot', show(*call(15, b'../../../victim.txt\t-\t{"cava": 9}')))
print('delete-abs', show(*call(15, (tt + '/victim.txt\t-\t{"cava": 9}').encode())))
print('conflict-out', show(*call(16, b'keep1.txt\t../../../stolen.txt')))
print('conflict-abs', show(*call(16, ('keep1.txt\t%s/stolen.txt' % tt).encode())))
print('bye', show(*call(18, b'')))
p.wait()
PY
out=$(python3 "$FAKE/coord.py" "$REPCTL" "$B" "$TEST_TMP" 2>&1) || true
# shellcheck disable=SC2001 # a prefix on every line
sed 's/^/# /' <<<"$out"
like "$out" '^hello-nomarker 3 ' "agent: HELLO for a folder without marker is an ERROR"
unlike "$out" '^(block-[a-z]*) 8 ' "agent: no block data was ever served"
like "$out" '^hello 2 ' "agent: HELLO for juke's folder is accepted"
for r in block-etclink block-dotdot block-abs put-dotdot put-abs put-link delete-dotdot delete-abs conflict-out conflict-abs; do
	like "$out" "^$r 3 " "agent: $r is refused (ERROR)"
done
like "$out" '^bye 2' "agent: BYE answered"
ok sentinels_absent
for p in "$TEST_TMP/evil-put" "$TEST_TMP/x/evil-put" "$TEST_TMP/stolen.txt" "$TEST_TMP/x/stolen.txt" /etc/evil-put; do
	ok test ! -e "$p"
done
ok test -f "$B/keep1.txt"
is "$(find "$TEST_TMP/agentdir" -mindepth 1 | wc -l)" 0 "agent: nothing created in a folder without marker"
trees_equal "(e) done: trees equal" "$A" "$B"

done_testing
