#!/usr/bin/env bash
# scripts/layers.sh - check that every #include follows the layering of
# docs/ARCHITECTURE.md ("Layers"):
#
#   base  <-  pg  <-  meta  <-  { repl , files }  <-  fleet  <-  daemon  <-  cli
#
# A file may include the headers of its own layer and of the layers below
# it, never of a layer above, and repl and files never each other.  A
# header belongs to the layer of the .c file of the same name
# (include/db.h: src/pg/db.c); the few headers without one are listed
# below.  libpq's header is for pg and above.  A header nobody placed is an
# error too, so a new module has to say where it lives.
#
# Run from anywhere: `make layers` (part of `make check`).  Exit 0 when the
# tree follows the rule, 1 with one line per offending include.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

declare -A RANK=([base]=0 [pg]=1 [meta]=2 [repl]=3 [files]=3 [fleet]=4 [daemon]=5 [cli]=6)
# headers without a .c of the same name
declare -A HEADER=(
	[version.h]=base
	[sql_embed.h]=pg
	[actions.h]=fleet
	[daemon.h]=daemon
	[cmd.h]=cli
	[onboard.h]=cli
)

layer_of_header() { # NAME.h -> layer, or empty
	local h=$1 c
	if [[ -n ${HEADER[$h]:-} ]]; then
		printf '%s\n' "${HEADER[$h]}"
		return
	fi
	for c in src/*/"${h%.h}".c; do
		[[ -e $c ]] || continue
		c=${c#src/}
		printf '%s\n' "${c%%/*}"
		return
	done
}

bad=0
complain() {
	printf '%s\n' "$*"
	bad=1
}

# every layer directory is known, every header is placed
for d in src/*/; do
	d=${d#src/}
	d=${d%/}
	[[ -n ${RANK[$d]:-} ]] || complain "src/$d/: not a layer of scripts/layers.sh (add it to RANK, and to docs/ARCHITECTURE.md)"
done
declare -A HLAYER=()
for h in include/*.h; do
	h=${h#include/}
	l=$(layer_of_header "$h")
	if [[ -z $l ]]; then
		complain "include/$h: no src/*/${h%.h}.c and not listed in scripts/layers.sh: say which layer it belongs to"
		continue
	fi
	HLAYER[$h]=$l
done

check_file() { # FILE LAYER
	local f=$1 me=$2 line n inc l
	n=0
	while IFS= read -r line; do
		n=$((n + 1))
		if [[ $line =~ ^[[:space:]]*#[[:space:]]*include[[:space:]]*\"([^\"]+)\" ]]; then
			inc=${BASH_REMATCH[1]}
			l=${HLAYER[$inc]:-}
			if [[ -z $l ]]; then
				[[ -e include/$inc ]] || complain "$f:$n: includes \"$inc\", which is not in include/"
				continue
			fi
			if [[ $l != "$me" ]] && { ((RANK[$l] >= RANK[$me])); }; then
				complain "$f:$n: $me includes \"$inc\" of layer $l (allowed: $me and the layers below it)"
			fi
		elif [[ $line =~ ^[[:space:]]*#[[:space:]]*include[[:space:]]*\<libpq ]] && ((RANK[$me] < RANK[pg])); then
			complain "$f:$n: $me includes libpq (only pg and the layers above talk to PostgreSQL)"
		fi
	done <"$f"
}

for f in src/*/*.c; do
	d=${f#src/}
	d=${d%%/*}
	[[ -n ${RANK[$d]:-} ]] && check_file "$f" "$d"
done
for f in src/*.c; do
	[[ -e $f ]] && check_file "$f" cli # main.c
done
for h in "${!HLAYER[@]}"; do
	check_file "include/$h" "${HLAYER[$h]}"
done

if ((bad)); then
	echo "layers: the includes above break the layering (docs/ARCHITECTURE.md, \"Layers\")" >&2
	exit 1
fi
echo "layers: ok ($(find src -name '*.c' | wc -l) source files, $(find include -name '*.h' | wc -l) headers)"
