#!/usr/bin/env bash
# t_fs_types.sh - folder types: a send-only node (the primary as master)
# sends but never takes changes in, and wins a conflict; a receive-only node
# takes changes in but does not send its own; the coordinator keeps a
# folder in sync by itself (inotify on its own copy, the interval for the
# other) once started.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib/common.sh"
. "$HERE/lib/fs.sh"

fs_setup
A=$TEST_TMP/a B=$TEST_TMP/b
mkdir -p "$A" "$B"
echo master > "$A/shared.txt"
fs_add_folder master "$A" "$B" type=cava:send-only
run_sync master
trees_equal "the send-only node's files reach the other" "$A" "$B"
echo "edited on juke" > "$B/shared.txt"
echo "new on juke" > "$B/juke-only.txt"
run_sync master
is "$(cat "$A/shared.txt")" master "a send-only node does not take an edit in"
ok test ! -e "$A/juke-only.txt"
echo "master v2" > "$A/shared.txt"
run_sync master
is "$(cat "$A/shared.txt")" "master v2" "the send-only node keeps its version"
is "$(cat "$B/shared.txt")" "master v2" "... and the other node gets it"

C=$TEST_TMP/c D=$TEST_TMP/d
mkdir -p "$C" "$D"
echo one > "$C/one.txt"
fs_add_folder mirror "$C" "$D" type=juke:receive-only
run_sync mirror
is "$(cat "$D/one.txt")" one "a receive-only node takes changes in"
echo "local change" > "$D/local.txt"
run_sync mirror
ok test ! -e "$C/local.txt"

# the coordinator keeps a folder in sync on its own (inotify on cava's copy)
E=$TEST_TMP/e F=$TEST_TMP/f
mkdir -p "$E" "$F"
fs_add_folder live "$E" "$F" interval=3
run_repctl start
is "$RC" 0 "repctl start"
cleanup_push "'$REPCTL' stop >/dev/null 2>&1 || true"
echo hello > "$E/arrives.txt"
arrived() { [[ -f "$F/arrives.txt" ]] && [[ $(cat "$F/arrives.txt") == hello ]]; }
ok wait_until 30 arrived
echo back > "$F/back.txt"
back() { [[ -f "$E/back.txt" ]]; }
ok wait_until 30 back
run_repctl status
like "$OUT" "live +active" "status lists the folder"
done_testing
