#!/usr/bin/env bash
# tests/integration/t_fs_delete.sh - file sync property 3: deletions
# propagate and do not come back; a rerun transfers nothing.  Local node
# cava, remote node juke over a real sshd.
#
# Proves:
#  - a file deleted on the local side disappears from the remote one, and
#    the other way round; a whole directory deleted on one side goes too;
#    the deleted file is kept in the other node's .repctl/trash/DAY/PATH with
#    its last content (trash_days defaults to 30);
#  - a file deleted on both sides is simply gone (nothing to do, no error);
#  - the deletions do not come back: three more runs copy 0 files and delete
#    0, and the files stay absent on both nodes;
#  - delete against edit, both directions: the edit wins, the file exists on
#    both nodes with the edited content (and the deleting side's trash is
#    not needed to get it back);
#  - a name deleted earlier and created again later is a new file and
#    propagates (the tombstone does not block it);
#  - a rerun after all that moves 0 bytes of file data.
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

mkdir -p "$A/dir/sub"
for f in keep.txt gone_a.txt gone_b.txt edit_del.txt del_edit.txt both_del.txt dir/x1 dir/sub/x2; do
	printf 'original %s\n' "$f" >"$A/$f"
done
head -c 200000 /dev/urandom >"$A/dir/sub/x3.flac"
x3=$(sha256sum <"$A/dir/sub/x3.flac")
run_sync music
is "$SYNC_FILES" 9 "9 files copied to juke"
trees_equal "base: trees equal" "$A" "$B"

# in_trash ROOT PATH CONTENT : ROOT/.repctl/trash/<day>/PATH exists with CONTENT
in_trash() {
	local root=$1 path=$2 content=$3 f
	f=$(find "$root/.repctl/trash" -path "$root/.repctl/trash/*/$path" -type f 2>/dev/null | head -n 1)
	[[ -n $f && $(cat "$f") == "$content" ]]
}
absent_both() { [[ ! -e $A/$1 && ! -e $B/$1 ]]; }

# ---- deletions and delete/edit races ---------------------------------------------------
rm "$A/gone_a.txt"
rm "$B/gone_b.txt"
rm -r "$B/dir"
rm "$A/both_del.txt" "$B/both_del.txt"
rm "$A/edit_del.txt"
printf 'edited on juke\n' >>"$B/edit_del.txt"
printf 'edited on cava\n' >>"$A/del_edit.txt"
rm "$B/del_edit.txt"

run_sync music
is "$SYNC_DELETED" 5 "5 deletions carried out (gone_a.txt on juke; gone_b.txt, dir/x1, dir/sub/x2, dir/sub/x3.flac on cava)"
is "$SYNC_FILES" 2 "2 copies: the edits that won against deletions"
is "$SYNC_CONFLICTS" 0 "delete against edit is no conflict"
for f in gone_a.txt gone_b.txt dir/x1 dir/sub/x2 dir/sub/x3.flac both_del.txt; do
	ok absent_both "$f"
done
ok in_trash "$B" gone_a.txt 'original gone_a.txt'
ok in_trash "$A" gone_b.txt 'original gone_b.txt'
ok in_trash "$A" dir/x1 'original dir/x1'
ok in_trash "$A" dir/sub/x2 'original dir/sub/x2'
t=$(find "$A/.repctl/trash" -path '*/dir/sub/x3.flac' -type f | head -n 1)
is "$(sha256sum <"${t:-/dev/null}")" "$x3" "cava's trash keeps dir/sub/x3.flac byte for byte"
for side in "$A" "$B"; do
	is "$(cat "$side/edit_del.txt" 2>&1)" $'original edit_del.txt\nedited on juke' \
		"$(basename "$side"): deleted on cava, edited on juke: the edit wins"
	is "$(cat "$side/del_edit.txt" 2>&1)" $'original del_edit.txt\nedited on cava' \
		"$(basename "$side"): edited on cava, deleted on juke: the edit wins"
	is "$(cat "$side/keep.txt" 2>&1)" 'original keep.txt' "$(basename "$side"): keep.txt untouched"
done
trees_equal "after the deletions: trees equal" "$A" "$B"
is "$(tree_sum "$A" | wc -l)" 3 "3 files left: keep.txt, edit_del.txt, del_edit.txt"

# ---- they do not come back ------------------------------------------------------------
for i in 1 2 3; do
	run_sync music
	is "$SYNC_FILES/$SYNC_DELETED/$SYNC_CONFLICTS/$SYNC_DATA_BYTES" 0/0/0/0 "rerun $i: nothing copied, nothing deleted, 0 bytes"
done
for f in gone_a.txt gone_b.txt dir/x1 dir/sub/x2 dir/sub/x3.flac both_del.txt; do
	ok absent_both "$f"
done
trees_equal "after the reruns: trees equal" "$A" "$B"

# a later delete, after the tombstones exist, propagates the same way
rm "$B/keep.txt"
run_sync music
is "$SYNC_DELETED" 1 "keep.txt deleted on juke: deleted on cava too"
ok absent_both keep.txt
ok in_trash "$A" keep.txt 'original keep.txt'

# ---- a name deleted earlier and created again is a new file ----------------------------
printf 'gone_a is back, new content\n' >"$A/gone_a.txt"
mkdir -p "$B/dir"
printf 'x1 again\n' >"$B/dir/x1"
run_sync music
is "$SYNC_FILES/$SYNC_CONFLICTS" 2/0 "re-created names propagate as plain copies"
is "$(cat "$B/gone_a.txt" 2>&1)" 'gone_a is back, new content' "juke gets the re-created gone_a.txt"
is "$(cat "$A/dir/x1" 2>&1)" 'x1 again' "cava gets the re-created dir/x1"
trees_equal "after re-creating: trees equal" "$A" "$B"

run_sync music
is "$SYNC_FILES/$SYNC_DELETED/$SYNC_CONFLICTS/$SYNC_DATA_BYTES" 0/0/0/0 "final rerun transfers nothing"
is "$(find "$A" "$B" -name '*.repctl-part' | wc -l)" 0 "no part file left"

done_testing
