#!/usr/bin/env bash
# tests/integration/t_fs_resume.sh - file sync property 5: a transfer killed
# halfway continues and sends only the rest.  The file travels from the
# local node cava to the remote node juke over a real sshd, slowed down by
# folders.bwlimit so that it can be killed in the middle.
#
# Proves:
#  - a new 100 MiB file: `repctl sync folder` killed with SIGKILL once the
#    receiver's ".NAME.<hash16>.repctl-part" holds more than 40% of it leaves
#    no file under the target name, only the part file; the next run
#    (without the limit) completes, reports as file data only what was
#    missing (at most the size minus what the part file held at the kill,
#    plus a little), and the trees are then equal with no part file left;
#  - a new version of an existing 40 MiB file, killed the same way: the
#    target keeps its old content byte for byte while the part file exists,
#    and the next run again sends only the rest;
#  - the SSH connection (counted by sshd) carries no more than that plus
#    protocol overhead.
# The remote agent of the killed run ends when sshd closes its channel; the
# test waits for it (it is a descendant of the test's own sshd, found by
# PID, never by name alone) before the next run.
# shellcheck disable=SC2317 # helpers are called through wait_until / ok
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/common.sh"
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/fs.sh"

MiB=1048576
fs_setup
A=$TEST_TMP/a B=$TEST_TMP/b
fs_add_folder music "$A" "$B"
# the big files go even when the test fails (the rest of $TEST_TMP is kept)
cleanup_push rm -rf -- "$A" "$B" "$TEST_TMP/big.new"
CONF=$TEST_TMP/bwlimit.conf

# the PIDs of processes below the test sshd (its connection children and
# what they run: the remote agents)
sshd_descendants() {
	local root
	root=$(sshd_pid "$FS_SSHD")
	[[ -n $root ]] || return 0
	ps -e -o pid=,ppid= | awk -v root="$root" '
		{ parent[$1] = $2 }
		END {
			for (p in parent) {
				q = p
				while (q in parent && q != root && q > 1) q = parent[q]
				if (q == root && p != root) print p
			}
		}'
}
no_remote_agent() {
	local p
	for p in $(sshd_descendants); do
		[[ $(cat "/proc/$p/comm" 2>/dev/null) == repctl ]] && return 1
	done
	return 0
}
no_advisory_lock() {
	[[ $(fs_node_sql "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") == 0 ]]
}
part_of() { # part_of DIR NAME : the part file of NAME in DIR, if any
	find "$1" -maxdepth 1 -name ".$2.*.repctl-part" | head -n 1
}
allocated() { # bytes really written to a (sparse) file
	local f=$1
	[[ -n $f && -e $f ]] || { echo 0; return; }
	echo $(($(stat -c '%b' "$f") * $(stat -c '%B' "$f")))
}
part_over() { # part_over DIR NAME BYTES
	local p
	p=$(part_of "$1" "$2")
	(($(allocated "$p") > $3))
}
sumof() { if [[ -e $1 ]]; then sha256sum <"$1" | awk '{print $1}'; else echo absent; fi; }

# start_killed_sync NAME SIZE : run a limited sync in the background and kill
# it -9 once juke's part file of NAME holds more than 40% of SIZE; sets
# KILLED_AT (bytes in the part file right after the kill)
start_killed_sync() {
	local name=$1 size=$2 pid comm t0
	t0=$SECONDS
	REPCTL_CONFIG=$CONF "$REPCTL" sync folder music >"$TEST_TMP/killed.out" 2>"$TEST_TMP/killed.err" &
	pid=$!
	if wait_until 60 part_over "$B" "$name" $((size * 4 / 10)); then
		pass "the limited sync is under way: the part file of $name passed 40% after $((SECONDS - t0)) s"
	else
		fail "the part file of $name never passed 40% within 60 s"
	fi
	comm=$(cat "/proc/$pid/comm" 2>/dev/null || echo gone)
	if pid_running "$pid" && [[ $comm == repctl ]]; then
		kill -9 "$pid"
		pass "killed the sync (repctl, PID $pid) with SIGKILL"
	else
		fail "the sync ended before it could be killed (too fast for the limit?)"
	fi
	wait "$pid" 2>/dev/null || true
	ok wait_until 20 no_remote_agent
	ok wait_until 20 no_advisory_lock
	KILLED_AT=$(allocated "$(part_of "$B" "$name")")
	note "part file of $name: $KILLED_AT of $size bytes when the remote agent had ended ($((KILLED_AT * 100 / size))%)"
	ok test "$KILLED_AT" -lt $((size * 95 / 100))
}

printf 'folders = { bwlimit = 20000; };\n' >"$CONF"

# ---- a new file -----------------------------------------------------------------------------
printf 'small\n' >"$A/a-small.txt"
head -c $((100 * MiB)) /dev/urandom >"$A/big.flac"
want=$(sumof "$A/big.flac")
start_killed_sync big.flac $((100 * MiB))
ok test ! -e "$B/big.flac"
part=$(part_of "$B" big.flac)
ok test -n "$part" -a -f "$part"
note "part file: ${part#"$B"/}"
like "${part#"$B"/}" '^\.big\.flac\.[0-9a-f]{16}\.repctl-part$' "the part file is named .NAME.<hash16>.repctl-part"

run_sync music
is "$SYNC_FILES" 1 "the rerun copies big.flac"
rest=$((100 * MiB - KILLED_AT))
ok test "$SYNC_DATA_BYTES" -gt 0 -a "$SYNC_DATA_BYTES" -le $((rest + 2 * MiB))
ok test "$SYNC_DATA_BYTES" -lt $((100 * MiB * 65 / 100))
ok test "$SYNC_SSH_BYTES" -gt 0 -a "$SYNC_SSH_BYTES" -le $((rest + 3 * MiB))
RESUME_NEW="killed at $KILLED_AT B of $((100 * MiB)); rerun: data $SYNC_DATA_BYTES B, repctl wire $SYNC_WIRE_BYTES B, sshd $SYNC_SSH_BYTES B"
is "$(sumof "$B/big.flac")" "$want" "juke has the whole file"
trees_equal "after the resumed run: trees equal" "$A" "$B"
is "$(find "$A" "$B" -name '*.repctl-part' | wc -l)" 0 "no part file left"

# ---- a new version of an existing file ---------------------------------------------------
head -c $((40 * MiB)) /dev/urandom >"$A/old.flac"
run_sync music
is "$SYNC_FILES" 1 "old.flac copied whole, unlimited"
old=$(sumof "$B/old.flac")
head -c $((40 * MiB)) /dev/urandom >"$A/old.flac"
want=$(sumof "$A/old.flac")
printf 'folders = { bwlimit = 8000; };\n' >"$CONF"
start_killed_sync old.flac $((40 * MiB))
is "$(sumof "$B/old.flac")" "$old" "juke's old.flac keeps its old content after the kill"
ok test -n "$(part_of "$B" old.flac)"
run_sync music
is "$SYNC_FILES" 1 "the rerun copies the new old.flac"
rest=$((40 * MiB - KILLED_AT))
ok test "$SYNC_DATA_BYTES" -gt 0 -a "$SYNC_DATA_BYTES" -le $((rest + 2 * MiB))
ok test "$SYNC_DATA_BYTES" -lt $((40 * MiB * 65 / 100))
ok test "$SYNC_SSH_BYTES" -gt 0 -a "$SYNC_SSH_BYTES" -le $((rest + 3 * MiB))
RESUME_OLD="killed at $KILLED_AT B of $((40 * MiB)); rerun: data $SYNC_DATA_BYTES B, repctl wire $SYNC_WIRE_BYTES B, sshd $SYNC_SSH_BYTES B"
is "$(sumof "$B/old.flac")" "$want" "juke has the new version"
trees_equal "after the second resumed run: trees equal" "$A" "$B"
is "$(find "$A" "$B" -name '*.repctl-part' | wc -l)" 0 "no part file left"

run_sync music
is "$SYNC_FILES/$SYNC_DATA_BYTES" 0/0 "a rerun copies nothing"

note "new file:    $RESUME_NEW"
note "new version: $RESUME_OLD"
done_testing
