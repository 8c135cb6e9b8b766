#!/usr/bin/env bash
# tests/integration/t_fs_converge.sh - file sync property 1 (two-way
# convergence) and the "a rerun transfers nothing" half of property 3, over
# a real sshd on loopback.
#
# Proves:
#  - two different trees (a few hundred files, sizes from empty to several
#    chunks, nested directories) on the local node cava and the remote node
#    juke merge into one: after the sync both trees hold the same files with
#    the same content (sorted sha256 lists equal);
#  - over several rounds of random adds, edits (overwrite, append, truncate,
#    rewrite), deletes and renames (files and whole directories) on BOTH
#    sides between syncs (fixed seed, FS_SEED overrides), a bounded number of
#    runs reaches a run that copies, deletes and conflicts nothing, and the
#    trees are then equal; no ".repctl-part" temporary file is left behind;
#  - nothing written is lost: every content a side created in a round (new
#    or edited file) exists somewhere in the converged tree (a concurrent
#    delete loses against an edit, a concurrent edit becomes a conflict copy);
#  - a rerun on converged trees copies 0 files, deletes 0, and what crosses
#    the SSH connection is only protocol overhead (< 0.1 MB, counted by repctl
#    and by sshd itself).
# shellcheck disable=SC2317 # helpers are called through wait_until / ok
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/common.sh"
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/fs.sh"

SEED=${FS_SEED:-20240611}
ROUNDS=3
OPS=40
note "seed $SEED (FS_SEED=... to change), $ROUNDS rounds of $OPS operations per side"

fs_setup
A=$TEST_TMP/a B=$TEST_TMP/b
fs_add_folder music "$A" "$B"

# two different starting trees
fs_mutate "$A" "$SEED" 200 add >"$TEST_TMP/mut.a.0"
fs_mutate "$B" "$((SEED + 1))" 120 add >"$TEST_TMP/mut.b.0"
na=$(tree_sum "$A" | wc -l) nb=$(tree_sum "$B" | wc -l)
note "start: $na file(s) on cava, $nb on juke"

# hashes present anywhere now; a later hash not in here was written in a round
hashes() { tree_sum "$1" | awk '{print $1}' | sort -u; }

ok sync_until_quiet music 4
note "first merge took $FS_RUNS run(s)"
trees_equal "first merge: trees equal" "$A" "$B"
total=$(tree_sum "$A" | wc -l)
is "$total" $((na + nb)) "first merge: every file of both sides is on each (a name added on both became a conflict copy)"
note "after the merge: $total file(s) on each side"

for ((r = 1; r <= ROUNDS; r++)); do
	hashes "$A" >"$TEST_TMP/before.$r"
	fs_mutate "$A" "$((SEED + 100 * r))" "$OPS" >"$TEST_TMP/mut.a.$r"
	fs_mutate "$B" "$((SEED + 100 * r + 1))" "$OPS" >"$TEST_TMP/mut.b.$r"
	# contents written this round, on either side
	cat <(hashes "$A") <(hashes "$B") | sort -u |
		comm -23 - "$TEST_TMP/before.$r" >"$TEST_TMP/new.$r"
	note "round $r: $(awk '{print $1}' "$TEST_TMP/mut.a.$r" | sort | uniq -c | tr -s ' \n' ' ')on cava;" \
		"$(awk '{print $1}' "$TEST_TMP/mut.b.$r" | sort | uniq -c | tr -s ' \n' ' ')on juke"
	if sync_until_quiet music 5; then
		pass "round $r: quiet after $FS_RUNS run(s)"
	else
		fail "round $r: still copying after $FS_RUNS runs"
	fi
	trees_equal "round $r: trees equal" "$A" "$B"
	lost=$(hashes "$A" | comm -13 - "$TEST_TMP/new.$r" | wc -l)
	is "$lost" 0 "round $r: none of the $(wc -l <"$TEST_TMP/new.$r") contents written this round was lost"
	is "$(find "$A" "$B" -name '*.repctl-part' | wc -l)" 0 "round $r: no part file left"
done

conflicts=$(tree_sum "$A" | grep -c '\.sync-conflict-' || true)
note "conflict copies in the final tree: $conflicts; files: $(tree_sum "$A" | wc -l)"

# ---- a rerun moves nothing ------------------------------------------------------------
run_sync music
is "$SYNC_FILES" 0 "rerun: 0 file(s) copied"
is "$SYNC_DELETED" 0 "rerun: 0 deleted"
is "$SYNC_CONFLICTS" 0 "rerun: 0 conflicts"
is "$SYNC_DATA_BYTES" 0 "rerun: 0 bytes of file data"
like "$SYNC_OUT" ' 0 file\(s\) copied \(0\.0 MB of file data' "rerun: the summary says 0 file(s) copied, 0.0 MB"
mb_below "$SYNC_WIRE_MB" 0.1 "rerun: the wire figure is protocol overhead only"
ok test "$SYNC_WIRE_BYTES" -ge 0 -a "$SYNC_WIRE_BYTES" -lt 100000
ok test "$SYNC_SSH_BYTES" -ge 0 -a "$SYNC_SSH_BYTES" -lt 100000
trees_equal "rerun: trees still equal" "$A" "$B"

done_testing
