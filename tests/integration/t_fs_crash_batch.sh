#!/usr/bin/env bash
# tests/integration/t_fs_crash_batch.sh - batched durability: the receiving
# agent killed at random points of its batches never leaves a torn or
# missing file among those it reported done.  Local node cava, remote node
# juke over a real sshd; juke's agent= is a wrapper that records the PID of
# each agent it starts (then execs `repctl agent`), so the test kills that
# process by PID, never by name.
#
# What this covers, and what it cannot: a SIGKILL stops the agent at an
# arbitrary instruction (in the middle of receiving a file, with files
# verified and waiting in its batch, between the fsyncs, renames and
# directory fsyncs of a commit, before or after its answer), so it checks
# the protocol's ordering: a file is reported done (the coordinator's
# "folder file done" line, juke's saved index) only after it is complete
# under its name.  The page cache survives a killed process, so a real
# power cut (written data that never reached the disk) cannot be simulated
# here; that half of the promise rests on the fsync of every part file and
# of every directory touched before the commit answers (see
# docs/ARCHITECTURE.md, "what is durable when").
#
# Proves, for 15 seeded iterations (each: cava gains 200 files, 20
# rewritten, 30 deleted, then `repctl -v sync folder` runs and juke's agent
# is killed with SIGKILL a seeded random 0.02-0.8 s after it started; a
# run takes 1-2 s on the test machine, so most runs are cut):
#  - every file the run reported done on juke is there, with cava's content;
#  - every live entry of juke's durable index (the saved index and its
#    journal, replayed as the agent does) is there with the indexed hash;
#  - every file under a real name on juke is a whole version that cava once
#    had at that path (never torn, never a mix), and no part file is ever
#    under a real name;
#  - at the end, a sync without kills converges: both trees equal, no part
#    file left for a version that was put in place (a part file of a
#    version that cava no longer has stays, as before batching), and a
#    rerun copies nothing.
# shellcheck disable=SC2317 # helpers are called through wait_until / ok
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/common.sh"
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/fs.sh"

ITER=${CRASH_ITER:-15}
fs_setup
A=$TEST_TMP/a B=$TEST_TMP/b
fs_add_folder music "$A" "$B"
cleanup_push rm -rf -- "$A" "$B"

# juke's agent: records its PID, then becomes `repctl agent`
PIDS=$TEST_TMP/agent.pids
WRAP=$TEST_TMP/agent-wrapper
printf '#!/bin/sh\necho $$ >>"%s"\nexec "%s" "$@"\n' "$PIDS" "$REPCTL" >"$WRAP"
chmod 755 "$WRAP"
: >"$PIDS"
run_repctl update database juke agent="$WRAP"
is "$RC" 0 "juke's agent is the PID-recording wrapper"

HIST=$TEST_TMP/history # every "sha256 path" cava ever had
: >"$HIST"

# mutate SEED: cava gains files, some rewritten, some deleted; the new
# versions go to the history
mutate() {
	python3 - "$A" "$1" "$HIST" <<-'PY'
		import hashlib, os, random, sys
		root, seed, hist = sys.argv[1], int(sys.argv[2]), sys.argv[3]
		rnd = random.Random(seed)
		def files():
		    out = []
		    for dp, dn, fn in os.walk(root):
		        if dp == root and '.repctl' in dn:
		            dn.remove('.repctl')
		        out += [os.path.relpath(os.path.join(dp, f), root) for f in fn]
		    return sorted(out)
		def size():
		    r = rnd.random()
		    return rnd.randrange(0, 20000) if r < 0.6 else rnd.randrange(20000, 400000)
		with open(hist, 'a') as h:
		    def write(rel):
		        data = rnd.randbytes(size())
		        full = os.path.join(root, rel)
		        os.makedirs(os.path.dirname(full), exist_ok=True)
		        with open(full, 'wb') as f:
		            f.write(data)
		        h.write('%s  %s\n' % (hashlib.sha256(data).hexdigest(), rel))
		    for i in range(200):
		        write('d%d/s%d/f%d-%03d.bin' % (rnd.randrange(8), rnd.randrange(3), seed, i))
		    fs = files()
		    for rel in rnd.sample(fs, min(20, len(fs))):
		        write(rel)
		    fs = files()
		    if len(fs) > 200:
		        for rel in rnd.sample(fs, 30):
		            os.unlink(os.path.join(root, rel))
	PY
}

sumof() { sha256sum <"$1" | awk '{print $1}'; }

# check_b RUN_STDERR: the three promises, after a killed run
check_b() {
	local err=$1 bad=0 n=0 path want got
	# done on juke: there, with cava's content (cava does not change during the run)
	while IFS= read -r path; do
		n=$((n + 1))
		if [[ ! -f $B/$path ]]; then
			diag "reported done but missing on juke: $path"
			bad=$((bad + 1))
		elif [[ -f $A/$path ]] && [[ $(sumof "$B/$path") != "$(sumof "$A/$path")" ]]; then
			diag "reported done but not cava's content on juke: $path"
			bad=$((bad + 1))
		fi
	done < <(sed -n "s/.*folder file done: \(.*\) on node 'juke'\$/\1/p" "$err")
	is "$bad" 0 "iteration $it: the $n file(s) reported done on juke are complete"
	DONE_TOTAL=$((DONE_TOTAL + n))
	# juke's durable index (the saved index, then its journal replayed as the
	# agent does: a journal line counts when that inode is under the name):
	# every live entry is on disk with its hash
	bad=0
	n=$(python3 - "$B" <<-'PY'
		import hashlib, os, sys
		root = sys.argv[1]
		ent = {}
		def lines(name):
		    try:
		        with open(os.path.join(root, '.repctl', name), 'rb') as f:
		            data = f.read().decode()
		    except FileNotFoundError:
		        return []
		    out = data.split('\n')
		    return out[:-1]  # a torn last line (no newline) does not count
		for l in lines('index'):
		    fl = l.split('\t')
		    ent[fl[0]] = fl
		for l in lines('index.journal'):
		    fl = l.split('\t')
		    try:
		        st = os.lstat(os.path.join(root, fl[0]))
		    except FileNotFoundError:
		        continue
		    if st.st_ino == int(fl[5]) and st.st_size == int(fl[2]):
		        ent[fl[0]] = fl
		live = 0
		for path, fl in sorted(ent.items()):
		    if fl[1] != '0':
		        continue
		    live += 1
		    full = os.path.join(root, path)
		    if not os.path.isfile(full):
		        print('# in juke\'s index but missing: ' + path, file=sys.stderr)
		        print('bad')
		    elif hashlib.sha256(open(full, 'rb').read()).hexdigest() != fl[7]:
		        print('# in juke\'s index with another content: ' + path, file=sys.stderr)
		        print('bad')
		print(live)
	PY
	)
	bad=$(grep -c '^bad$' <<<"$n" || true)
	n=$(tail -n 1 <<<"$n")
	is "$bad" 0 "iteration $it: the $n live entries of juke's durable index are on disk as indexed"
	# every real name on juke: a whole version cava once had there
	bad=0
	while IFS= read -r line; do
		got=${line%% *}
		path=${line#*  ./}
		if [[ $path == *.repctl-part ]]; then
			diag "a part file under a real name: $path"
			bad=$((bad + 1))
		elif ! grep -qxF "$got  $path" "$HIST"; then
			diag "torn or unknown content on juke: $path"
			bad=$((bad + 1))
		fi
	done < <(cd "$B" && find . -path ./.repctl -prune -o -type f ! -name '.*.repctl-part' -print0 |
		xargs -0 -r sha256sum)
	is "$bad" 0 "iteration $it: every file under a real name on juke is a whole version"
}

agent_alive() { [[ -n ${1:-} ]] && pid_running "$1"; }
last_agent() { tail -n 1 "$PIDS" 2>/dev/null || true; }
no_agent() { ! agent_alive "$(last_agent)"; }
agent_started() { (($(wc -l <"$PIDS") > $1)); }

DONE_TOTAL=0 KILLS=0
for it in $(seq 1 "$ITER"); do
	mutate "$it"
	# the kill comes at a seeded random time after juke's agent started (its
	# scan, the transfers, the batches and their commits all take part)
	delay=$(python3 -c "import random; print('%.2f' % random.Random($it * 7919).uniform(0.02, 0.8))")
	before=$(wc -l <"$PIDS")
	"$REPCTL" -v sync folder music >"$TEST_TMP/run$it.out" 2>"$TEST_TMP/run$it.err" &
	spid=$!
	pid=''
	if wait_until 20 agent_started "$before"; then
		pid=$(last_agent)
		sleep "$delay"
	fi
	if agent_alive "$pid" && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == repctl ]]; then
		kill -9 "$pid"
		KILLS=$((KILLS + 1))
		note "iteration $it: killed juke's agent (PID $pid) $delay s after it started"
	else
		note "iteration $it: the run was over $delay s after juke's agent started (nothing killed)"
	fi
	rc=0
	wait "$spid" || rc=$?
	note "iteration $it: the run exited $rc: $(tail -n 1 "$TEST_TMP/run$it.out" 2>/dev/null)"
	ok wait_until 20 no_agent
	check_b "$TEST_TMP/run$it.err"
done
note "$KILLS of $ITER runs killed; $DONE_TOTAL file(s) reported done in all"
ok test "$KILLS" -ge $((ITER / 2))

# the final, unkilled syncs converge
ok sync_until_quiet music 4
# part files are not synced: compare the trees without them
tree_noparts() { tree_sum "$1" | grep -v '\.repctl-part$' || true; }
is "$(tree_noparts "$B")" "$(tree_noparts "$A")" "after the kills: trees equal"
# a part file left is of a version that no longer exists on cava (added or
# rewritten, then deleted or rewritten again before a run finished it): the
# transfers that completed used theirs
stale=0
while IFS= read -r part; do
	name=$(basename "$part")
	name=${name#.}
	h16=${name%.repctl-part}
	h16=${h16##*.}
	target=$(dirname "$part")/${name%."$h16".repctl-part}
	if [[ -f $target && $(sumof "$target") == "$h16"* ]]; then
		diag "a part file of the current version is left: $part"
		stale=$((stale + 1))
	fi
done < <(find "$B" -name '.*.repctl-part')
is "$stale" 0 "no part file left for a version that was put in place"
note "part files of superseded versions left on juke: $(find "$B" -name '.*.repctl-part' | wc -l)"
run_sync music
is "$SYNC_FILES/$SYNC_DELETED/$SYNC_CONFLICTS" 0/0/0 "a rerun does nothing"

done_testing
