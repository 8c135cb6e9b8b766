#!/usr/bin/env bash
# tests/integration/t_fs_conflict.sh - file sync property 2: a file edited on
# both sides ends as two files on both nodes, named as in the design, and
# nothing is lost.  Local node cava, remote node juke over a real sshd.
#
# Proves, for a nested file with an extension, a dotfile, a file without an
# extension and a file with two extensions, edited on both sides between
# two syncs (mtimes set so that either side can be the newer one):
#  - the sync reports one conflict per file and exits 0;
#  - on BOTH nodes NAME.EXT holds the version with the newer mtime, and
#    NAME.sync-conflict-YYYYMMDD-HHMMSS-NODE.EXT (NODE = the node whose
#    version lost the name; the stamp is the UTC time of the run; a dotfile
#    or a name without a dot gets the tag at its end, "a.tar.gz" gives
#    "a.tar.sync-conflict-...gz") holds the other one: both versions exist
#    on both nodes, byte for byte, and the two trees are identical;
#  - equal mtimes: the smaller node name (cava) keeps the name;
#  - the same edit made on both sides is not a conflict (no copy);
#  - a rerun copies nothing and makes no new conflict; a later edit of a
#    file that had a conflict propagates as a plain copy (its version
#    vectors were merged), without a new conflict copy.
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

mkdir -p "$A/artist/album"
printf 'base song\n' >"$A/artist/album/song.flac"
printf 'base hidden\n' >"$A/.hidden"
printf 'base readme\n' >"$A/README"
printf 'base archive\n' >"$A/archive.tar.gz"
printf 'base tie\n' >"$A/tie.txt"
printf 'base same\n' >"$A/same.txt"
head -c 3000000 /dev/urandom >"$A/big.bin"
run_sync music
is "$SYNC_FILES" 7 "the base versions are copied to juke"
trees_equal "base: trees equal" "$A" "$B"

# ---- edits on both sides ---------------------------------------------------------------
now=$(date +%s)
old=$((now - 3600)) new=$((now - 60))
edit() { # edit FILE CONTENT EPOCH
	printf '%s\n' "$2" >"$1"
	touch -d "@$3" "$1"
}
edit "$A/artist/album/song.flac" 'song from cava (older)' "$old"
edit "$B/artist/album/song.flac" 'song from juke (newer)' "$new"
edit "$A/.hidden" 'hidden from cava (older)' "$old"
edit "$B/.hidden" 'hidden from juke (newer)' "$new"
edit "$A/README" 'readme from cava (newer)' "$new"
edit "$B/README" 'readme from juke (older)' "$old"
edit "$A/archive.tar.gz" 'archive from cava (newer)' "$new"
edit "$B/archive.tar.gz" 'archive from juke (older)' "$old"
edit "$A/tie.txt" 'tie from cava' "$new"
edit "$B/tie.txt" 'tie from juke' "$new"
edit "$A/same.txt" 'the same edit' "$old"
edit "$B/same.txt" 'the same edit' "$new"
# a big file: only its changed chunks may travel, conflict or not
cp "$A/big.bin" "$TEST_TMP/big.a" && printf 'cava' | dd of="$TEST_TMP/big.a" bs=1 seek=1000 conv=notrunc status=none
cp "$A/big.bin" "$TEST_TMP/big.b" && printf 'juke' | dd of="$TEST_TMP/big.b" bs=1 seek=1000 conv=notrunc status=none
cp "$TEST_TMP/big.a" "$A/big.bin" && touch -d "@$old" "$A/big.bin"
cp "$TEST_TMP/big.b" "$B/big.bin" && touch -d "@$new" "$B/big.bin"
sumof() { sha256sum <"$1" | awk '{print $1}'; }
big_a=$(sumof "$A/big.bin") big_b=$(sumof "$B/big.bin")

day0=$(date -u +%Y%m%d)
run_sync music
day1=$(date -u +%Y%m%d)
is "$SYNC_CONFLICTS" 6 "6 conflicts (song, .hidden, README, archive, tie, big; not same.txt)"
like "$SYNC_ERR" 'folder conflict on artist/album/song.flac: juke keeps the name' "the conflict is logged with the winner"

# conflict_file DIR PATTERN : the single file matching the glob, or "" (with a failure)
conflict_file() {
	local dir=$1 pat=$2 f
	local -a m=()
	for f in "$dir"/$pat; do
		[[ -e $f ]] && m+=("$f")
	done
	if ((${#m[@]} == 1)); then
		echo "${m[0]#"$dir"/}"
	else
		echo "(${#m[@]} matches of $pat)"
	fi
}

# check NAME WINNER_CONTENT LOSER_CONTENT GLOB LOSER_NODE
check() {
	local name=$1 win=$2 lose=$3 glob=$4 node=$5 side cf re
	for side in "$A" "$B"; do
		local who=cava
		[[ $side == "$B" ]] && who=juke
		is "$(cat "$side/$name")" "$win" "$who: $name holds the newer version"
		cf=$(conflict_file "$side" "$glob")
		re="sync-conflict-(${day0}|${day1})-[0-2][0-9][0-5][0-9][0-5][0-9]-$node"
		like "$cf" "$re" "$who: conflict copy of $name is named like $glob with ${node}'s stamp ($cf)"
		if [[ -f $side/$cf ]]; then
			is "$(cat "$side/$cf")" "$lose" "$who: the conflict copy holds the other version"
		else
			fail "$who: the conflict copy of $name exists"
		fi
	done
}
check artist/album/song.flac 'song from juke (newer)' 'song from cava (older)' \
	'artist/album/song.sync-conflict-*-cava.flac' cava
check .hidden 'hidden from juke (newer)' 'hidden from cava (older)' '.hidden.sync-conflict-*-cava' cava
check README 'readme from cava (newer)' 'readme from juke (older)' 'README.sync-conflict-*-juke' juke
check archive.tar.gz 'archive from cava (newer)' 'archive from juke (older)' \
	'archive.tar.sync-conflict-*-juke.gz' juke
check tie.txt 'tie from cava' 'tie from juke' 'tie.sync-conflict-*-juke.txt' juke
is "$(conflict_file "$A" 'same.sync-conflict-*')" "(0 matches of same.sync-conflict-*)" "the same edit on both sides is no conflict"
is "$(cat "$A/same.txt")|$(cat "$B/same.txt")" 'the same edit|the same edit' "same.txt: the common edit on both"

for side in "$A" "$B"; do
	is "$(sumof "$side/big.bin")" "$big_b" "big.bin on $(basename "$side"): juke's (newer) version"
	cf=$(conflict_file "$side" 'big.sync-conflict-*-cava.bin')
	if [[ -f $side/$cf ]]; then
		is "$(sumof "$side/$cf")" "$big_a" "big.bin on $(basename "$side"): cava's version kept as $cf"
	else
		fail "big.bin on $(basename "$side"): cava's version kept as a conflict copy ($cf)"
	fi
done
# two changed regions at most 2 chunks (<= 256 KiB each) per direction: well under
# the 6 MB two whole copies would take
mb_below "$SYNC_DATA_MB" 1.2 "the conflict moved only the changed chunks of big.bin (file data)"

trees_equal "after the conflicts: trees identical" "$A" "$B"
is "$(tree_sum "$A" | wc -l)" 13 "13 files on each side: 7 + 6 conflict copies"
is "$(find "$A" "$B" -name '*.repctl-part' | wc -l)" 0 "no part file left"

# ---- reruns ------------------------------------------------------------------------------
run_sync music
is "$SYNC_FILES/$SYNC_CONFLICTS/$SYNC_DELETED" 0/0/0 "rerun: nothing copied, no new conflict"
trees_equal "rerun: trees identical" "$A" "$B"

printf 'song edited again on cava\n' >"$A/artist/album/song.flac"
run_sync music
is "$SYNC_FILES/$SYNC_CONFLICTS" 1/0 "a later edit of the conflicted file is a plain copy"
is "$(cat "$B/artist/album/song.flac")" 'song edited again on cava' "juke has the later edit"
is "$(find "$A" -name 'song.sync-conflict-*' | wc -l)" 1 "no second conflict copy"
trees_equal "after the later edit: trees identical" "$A" "$B"

done_testing
