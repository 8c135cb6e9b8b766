#!/usr/bin/env bash
# tests/integration/t_fs_delta.sh - file sync property 4 (delta transfer):
# changing 1 MiB in the middle of a 200 MiB file sends about 1 MiB, not
# 200 MiB.  The big file travels from the local node cava to the remote node
# juke over a real sshd, and the bytes are counted twice: by repctl (file
# data and wire bytes, from its summary and repctl.folder_run) and by sshd
# itself ("Transferred: sent N, received M bytes" in its log: the encrypted
# bytes of the whole connection, handshake and indexes included).
#
# Proves, with 200 MiB of incompressible data (/dev/urandom, written once):
#  - the first sync copies it whole (about 200 MiB on the wire, at least
#    200 MiB counted by sshd: no compression of random data fakes a gain);
#  - 1 MiB overwritten in the middle (dd conv=notrunc): about 1 MiB of file
#    data (1 MiB plus the content-defined chunks around it, < 1.5 MB) and
#    < 2 MB on the SSH connection; the rest is rebuilt from juke's old
#    version (reported as reused locally);
#  - 1 MiB inserted in the middle (the file rebuilt around new bytes, so
#    every later byte moves by 1 MiB): < 2 MB on the SSH connection;
#  - the file renamed (mv): < 0.3 MB on the SSH connection, no file data:
#    juke rebuilds it from its own blocks;
#  - after each step the trees are equal, and a rerun copies nothing.
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
mkdir -p "$A/album"
printf 'liner notes\n' >"$A/album/notes.txt"

t0=$SECONDS
head -c $((200 * MiB)) /dev/urandom >"$A/album/big.flac"
note "200 MiB written in $((SECONDS - t0)) s"

# ---- the first copy: all of it -------------------------------------------------------------
t0=$SECONDS
run_sync music
note "first sync: $((SECONDS - t0)) s"
is "$SYNC_FILES" 2 "first sync: 2 files copied"
ok test "$SYNC_DATA_BYTES" -ge $((200 * MiB))
ok test "$SYNC_SSH_BYTES" -ge $((200 * MiB))
trees_equal "first sync: trees equal" "$A" "$B"

# ---- 1 MiB overwritten in the middle ------------------------------------------------------
head -c $MiB /dev/urandom | dd of="$A/album/big.flac" bs=$MiB seek=100 conv=notrunc status=none
t0=$SECONDS
run_sync music
note "overwrite sync: $((SECONDS - t0)) s"
is "$SYNC_FILES" 1 "overwrite: 1 file copied"
mb_between "$SYNC_DATA_MB" 1.0 1.5 "overwrite: about 1 MiB of file data (summary)"
ok test "$SYNC_DATA_BYTES" -ge "$MiB" -a "$SYNC_DATA_BYTES" -lt 1500000
mb_between "$SYNC_REUSED_MB" 207 211 "overwrite: the rest reused from juke's old version"
ok test "$SYNC_WIRE_BYTES" -lt 2000000
ok test "$SYNC_SSH_BYTES" -gt 0 -a "$SYNC_SSH_BYTES" -lt 2000000
DELTA_OVERWRITE="data $SYNC_DATA_BYTES B, repctl wire $SYNC_WIRE_BYTES B, sshd $SYNC_SSH_BYTES B"
trees_equal "overwrite: trees equal" "$A" "$B"

# ---- 1 MiB inserted in the middle ----------------------------------------------------------
{
	head -c $((50 * MiB)) "$A/album/big.flac"
	head -c $MiB /dev/urandom
	tail -c +$((50 * MiB + 1)) "$A/album/big.flac"
} >"$TEST_TMP/big.new"
mv "$TEST_TMP/big.new" "$A/album/big.flac"
is "$(stat -c %s "$A/album/big.flac")" $((201 * MiB)) "the file grew by 1 MiB"
t0=$SECONDS
run_sync music
note "insert sync: $((SECONDS - t0)) s"
is "$SYNC_FILES" 1 "insert: 1 file copied"
ok test "$SYNC_DATA_BYTES" -ge "$MiB" -a "$SYNC_DATA_BYTES" -lt 1800000
ok test "$SYNC_WIRE_BYTES" -lt 2000000
ok test "$SYNC_SSH_BYTES" -gt 0 -a "$SYNC_SSH_BYTES" -lt 2000000
DELTA_INSERT="data $SYNC_DATA_BYTES B, repctl wire $SYNC_WIRE_BYTES B, sshd $SYNC_SSH_BYTES B"
trees_equal "insert: trees equal" "$A" "$B"

# ---- renamed ------------------------------------------------------------------------------
mkdir -p "$A/renamed"
mv "$A/album/big.flac" "$A/renamed/big-renamed.flac"
t0=$SECONDS
run_sync music
note "rename sync: $((SECONDS - t0)) s"
is "$SYNC_FILES/$SYNC_DELETED" 1/1 "rename: 1 file copied (the new name), 1 deleted (the old)"
is "$SYNC_DATA_BYTES" 0 "rename: no file data: rebuilt from juke's own blocks"
ok test "$SYNC_SSH_BYTES" -gt 0 -a "$SYNC_SSH_BYTES" -lt 300000
mb_below "$SYNC_WIRE_MB" 0.3 "rename: the summary's wire figure"
DELTA_RENAME="data $SYNC_DATA_BYTES B, repctl wire $SYNC_WIRE_BYTES B, sshd $SYNC_SSH_BYTES B"
trees_equal "rename: trees equal" "$A" "$B"
ok test ! -e "$B/album/big.flac"

# ---- rerun ---------------------------------------------------------------------------------
run_sync music
is "$SYNC_FILES/$SYNC_DELETED/$SYNC_DATA_BYTES" 0/0/0 "rerun: nothing copied"
DELTA_RERUN="repctl wire $SYNC_WIRE_BYTES B, sshd $SYNC_SSH_BYTES B"
is "$(find "$A" "$B" -name '*.repctl-part' | wc -l)" 0 "no part file left"

note "overwrite 1 MiB: $DELTA_OVERWRITE"
note "insert 1 MiB:    $DELTA_INSERT"
note "rename:          $DELTA_RENAME"
note "rerun:           $DELTA_RERUN"
done_testing
