#!/usr/bin/env bash
# tests/integration/t_layers.sh - `make layers` (scripts/layers.sh) holds the
# tree to the layering of docs/ARCHITECTURE.md, and catches a break.
#
# Proves:
#  - the tree as it is passes;
#  - in a copy of the tree, each of these fails, naming the file, the line,
#    the header and its layer: repl including a files header (siblings),
#    base including a pg header (upwards), files including a cli header,
#    base including libpq, a new header that no layer owns, a new source
#    directory that is not a layer;
#  - the copy passes again once the include is removed.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/common.sh"

out=$(bash "$ROOT/scripts/layers.sh" 2>&1) && rc=0 || rc=$?
is "$rc" 0 "the tree follows the layers ($out)"

T=$TEST_TMP/tree
mkdir -p "$T"
(cd "$ROOT" && tar -cf - scripts/layers.sh src include) | tar -C "$T" -xf -
layers() { out=$(bash "$T/scripts/layers.sh" 2>&1) && rc=0 || rc=$?; }
layers
is "$rc" 0 "the copy passes too"

# ADD FILE LINE: append LINE after FILE's first #include "..." line
inject() { sed -i "0,/^#include \"/s//$2\\n#include \"/" "$T/$1"; }
try() { # FILE LINE WANT MSG
	cp "$T/$1" "$T/$1.orig"
	inject "$1" "$2"
	layers
	is "$rc" 1 "$4: refused"
	like "$out" "$3" "$4: the message"
	mv -f "$T/$1.orig" "$T/$1"
}
try src/repl/conflict.c '#include "fs_sync.h"' \
	'src/repl/conflict.c:[0-9]+: repl includes "fs_sync.h" of layer files' "repl -> files"
try src/base/vv.c '#include "db.h"' 'src/base/vv.c:[0-9]+: base includes "db.h" of layer pg' "base -> pg"
try src/files/fs_chunk.c '#include "cli.h"' 'src/files/fs_chunk.c:[0-9]+: files includes "cli.h" of layer cli' \
	"files -> cli"
try src/meta/meta.c '#include "actions.h"' 'meta includes "actions.h" of layer fleet' "meta -> fleet"
try src/base/buf.c '#include <libpq-fe.h>' 'src/base/buf.c:[0-9]+: base includes libpq' "base -> libpq"
layers
is "$rc" 0 "the copy passes again"

echo '#define X 1' >"$T/include/orphan.h"
layers
is "$rc" 1 "a header no layer owns: refused"
like "$out" "include/orphan.h: no src/\\*/orphan.c" "... the message says how to place it"
rm "$T/include/orphan.h"
mkdir -p "$T/src/extra"
echo 'int x;' >"$T/src/extra/x.c"
layers
is "$rc" 1 "a source directory that is not a layer: refused"
like "$out" "src/extra/: not a layer" "... the message"

done_testing
