#!/usr/bin/env bash
# tests/integration/t_fs_stale_part.sh - a part file left by a killed
# transfer whose version never came again is removed by a later scan, once
# nothing touched it (ctime) for FS_PART_MAX_AGE (a day); anything else
# that ends in .repctl-part, and a fresh part file, are left alone.
#
# The age is shortened with REPCTL_PART_MAX_AGE (seconds), which the local
# agent (node cava, started by `repctl sync folder` through pipes) inherits.
#
# Proves:
#  - a part file named as the agent names them (.NAME.<hash16>.repctl-part)
#    whose ctime is older than the limit is removed by the next run's scan;
#  - one whose mtime is two days old but whose ctime is recent (a verified
#    part carries the source's mtime) is kept, as is one just written;
#  - files that only end in .repctl-part (no leading dot, no 16-hex field)
#    are never removed, and never synced;
#  - with the default limit (a day) a part file a few seconds old is kept;
#  - resume after a kill still works: t_fs_resume.sh (default limit).
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
printf 'track one\n' >"$A/artist/album/01.flac"
run_sync music
is "$SYNC_FILES" 1 "first run copies the track"

stale=$A/artist/album/.02.flac.0123456789abcdef.repctl-part
oldm=$A/artist/album/.03.flac.fedcba9876543210.repctl-part
mine=$A/artist/album/notes.repctl-part
odd=$A/artist/album/.04.flac.NOTHEXNOTHEXNOTH.repctl-part
printf 'half a track\n' >"$stale"
printf 'user data\n' >"$mine"
printf 'odd\n' >"$odd"
sleep 4
# written after the sleep: a recent ctime, whatever its mtime says
printf 'verified part\n' >"$oldm"
touch -d '2 days ago' "$oldm"

# default limit (a day): nothing is removed
run_sync music
ok test -e "$stale"
ok test -e "$oldm"

run_sync music 0 REPCTL_PART_MAX_AGE=3
ok test ! -e "$stale"
pass "the stale part file (ctime older than the limit) was removed by the scan"
ok test -e "$oldm"
pass "a part with an old mtime but a recent ctime is kept"
ok test -e "$mine"
ok test -e "$odd"
pass "names that only end in .repctl-part are left alone"
ok test ! -e "$B/artist/album/notes.repctl-part"
is "$SYNC_FILES" 0 "nothing copied (part files are never synced)"
done_testing
