#!/usr/bin/env bash
# tests/integration/t_vv_sql.sh - the SQL twins of the version-vector code
# (repctl.vv_cmp and repctl.vv_merge in sql/node_schema.sql) agree with
# vv_compare() / vv_merge() in src/base/vv.c on a real server: a table of
# cases (equal, dominates, dominated, concurrent, empty, NULL arguments,
# keys on one side only, zero counters), both argument orders, a sequential
# update, refusals of non-objects, and a randomized cross-check against the
# C code itself (compiled here from src/) when a C compiler is available.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/common.sh"
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/pg.sh"

pg_start A
ok pg_psql A postgres -f "$ROOT/sql/node_schema.sql"
# idempotent: loading it again changes nothing and does not fail
ok pg_psql A postgres -f "$ROOT/sql/node_schema.sql"

q() { pg_sql A postgres "$1"; }

# A SQL literal for a vector: NULL stays NULL, anything else is quoted jsonb.
lit() {
	if [[ $1 == NULL ]]; then
		printf 'NULL::jsonb'
	else
		printf "'%s'::jsonb" "${1//\'/\'\'}"
	fi
}

# ---- the table of cases -----------------------------------------------------
# a | b | vv_cmp(a, b) | vv_merge(a, b) (compared as jsonb text: key order
# as jsonb prints it).  vv_cmp(b, a) must be the mirror, vv_merge(b, a) the
# same, and the merge must be neither dominated by nor concurrent with a or b.
cases=(
	# equal
	'{}|{}|0|{}'
	'NULL|NULL|0|{}'
	'NULL|{}|0|{}'
	'{"a": 1}|{"a": 1}|0|{"a": 1}'
	'{"a": 1, "b": 2}|{"b": 2, "a": 1}|0|{"a": 1, "b": 2}'
	# a zero counter is the same as no key (the SQL merge keeps the key)
	'{"a": 0}|{}|0|{"a": 0}'
	'{"a": 0}|NULL|0|{"a": 0}'
	'{"a": 0, "b": 2}|{"b": 2, "c": 0}|0|{"a": 0, "b": 2, "c": 0}'
	# a dominates
	'{"a": 1}|{}|1|{"a": 1}'
	'{"a": 1}|NULL|1|{"a": 1}'
	'{"a": 2}|{"a": 1}|1|{"a": 2}'
	'{"a": 1, "b": 1}|{"a": 1}|1|{"a": 1, "b": 1}'
	'{"a": 2, "b": 3}|{"a": 1, "b": 3, "c": 0}|1|{"a": 2, "b": 3, "c": 0}'
	'{"a": 9223372036854775807}|{"a": 1}|1|{"a": 9223372036854775807}'
	# b dominates
	'{}|{"a": 1}|-1|{"a": 1}'
	'NULL|{"z": 4}|-1|{"z": 4}'
	'{"a": 1}|{"a": 2}|-1|{"a": 2}'
	'{"a": 1, "b": 0}|{"a": 1, "b": 1}|-1|{"a": 1, "b": 1}'
	'{"a": 3, "b": 2}|{"a": 3, "b": 5, "c": 1}|-1|{"a": 3, "b": 5, "c": 1}'
	# concurrent: disjoint keys
	'{"a": 1}|{"b": 1}|2|{"a": 1, "b": 1}'
	'{"a": 5, "c": 2}|{"b": 1, "d": 7}|2|{"a": 5, "b": 1, "c": 2, "d": 7}'
	# concurrent: overlapping keys
	'{"a": 2, "b": 1}|{"a": 1, "b": 2}|2|{"a": 2, "b": 2}'
	'{"a": 2, "b": 1}|{"a": 1, "b": 1, "c": 1}|2|{"a": 2, "b": 1, "c": 1}'
	'{"a": 5, "b": 1, "c": 3}|{"a": 2, "b": 7, "d": 1}|2|{"a": 5, "b": 7, "c": 3, "d": 1}'
	# node names of different lengths and with punctuation
	'{"hub": 3, "eu.west-1": 1}|{"hub": 3, "n1": 2}|2|{"n1": 2, "hub": 3, "eu.west-1": 1}'
)

mirror() {
	case $1 in
	1) echo -1 ;;
	-1) echo 1 ;;
	*) echo "$1" ;;
	esac
}

for c in "${cases[@]}"; do
	IFS='|' read -r a b want_cmp want_merge <<<"$c"
	la=$(lit "$a")
	lb=$(lit "$b")
	is "$(q "select repctl.vv_cmp($la, $lb)")" "$want_cmp" "vv_cmp($a, $b)"
	is "$(q "select repctl.vv_cmp($lb, $la)")" "$(mirror "$want_cmp")" "vv_cmp($b, $a)"
	exp=$(q "select '$want_merge'::jsonb::text")
	is "$(q "select repctl.vv_merge($la, $lb)::text")" "$exp" "vv_merge($a, $b)"
	is "$(q "select repctl.vv_merge($lb, $la)::text")" "$exp" "vv_merge($b, $a)"
	is "$(q "select repctl.vv_cmp(m, $la) in (0, 1) and repctl.vv_cmp(m, $lb) in (0, 1)
	         from repctl.vv_merge($la, $lb) m")" t "vv_merge($a, $b) has seen both"
done

# NULL in, not NULL out: the functions are not STRICT.
is "$(q "select repctl.vv_cmp(NULL, NULL) is null, repctl.vv_merge(NULL, NULL) is null")" 'f|f' \
	"NULL arguments give a result, not NULL"
is "$(q "select jsonb_typeof(repctl.vv_merge(NULL, NULL))")" object "vv_merge(NULL, NULL) is an object"

# A sequential update: node n2 received a's version, merged it into its own
# and bumped its own counter.  It dominates a; a change made meanwhile on n1
# without seeing it is a conflict; once seen and bumped again, it wins.
a='{"n1": 3, "n2": 1}'
old='{"n1": 2, "n2": 4}'
upd=$(q "select m || jsonb_build_object('n2', (m ->> 'n2')::bigint + 1)
         from repctl.vv_merge('$a', '$old') m")
is "$upd" '{"n1": 3, "n2": 5}' "sequential update: merge then bump"
is "$(q "select repctl.vv_cmp('$upd', '$a')")" 1 "sequential update dominates what it saw"
is "$(q "select repctl.vv_cmp('$upd', '$old')")" 1 "sequential update dominates its own past"
is "$(q "select repctl.vv_cmp('{\"n1\": 4, \"n2\": 1}', '$upd')")" 2 \
	"a change made meanwhile without seeing it is concurrent"
is "$(q "select repctl.vv_cmp(m || '{\"n1\": 5}', '$upd')
         from repctl.vv_merge('{\"n1\": 4, \"n2\": 1}', '$upd') m")" 1 \
	"once seen, the next change dominates again"

# Like vv_parse(), the SQL twins refuse what is not an object.
fails q "select repctl.vv_cmp('[1]', '{}')"
fails q "select repctl.vv_cmp('{}', '1')"
fails q "select repctl.vv_merge('\"a\"', '{}')"
fails q "select repctl.vv_cmp('{\"a\": 1.5}', '{}')"

# ---- randomized cross-check against the C code ------------------------------
cc_bin=${CC:-cc}
if ! command -v "$cc_bin" >/dev/null 2>&1; then
	note "no C compiler ($cc_bin): randomized cross-check against vv.c skipped"
	done_testing
fi

# For pseudo-random pairs (fixed seed, small ranges, zero counters and
# NULLs included), print a, b (empty for NULL), vv_compare(a, b) and
# vv_to_json(vv_merge(a, b)), tab-separated.
cat >"$TEST_TMP/vvgen.c" <<'EOF'
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "vv.h"

static uint32_t seed = 77u;

static uint32_t
rnd(uint32_t n)
{
	seed ^= seed << 13;
	seed ^= seed >> 17;
	seed ^= seed << 5;
	return seed % n;
}

static void
gen(char *out, size_t cap)
{
	static const char *const keys[] = { "a", "b", "hub", "n1", "eu.west-1" };
	size_t i, len = 0;
	int first = 1;

	if (rnd(10) == 0) {
		out[0] = '\0'; /* NULL */
		return;
	}
	len += (size_t)snprintf(out + len, cap - len, "{");
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (rnd(2) == 0)
			continue;
		len += (size_t)snprintf(out + len, cap - len, "%s\"%s\": %u", first ? "" : ", ",
		    keys[i], rnd(4));
		first = 0;
	}
	snprintf(out + len, cap - len, "}");
}

int
main(void)
{
	int i;

	for (i = 0; i < 300; i++) {
		char a[256], b[256], *m;
		struct vv va, vb, vm;

		gen(a, sizeof(a));
		gen(b, sizeof(b));
		if (vv_parse(a, &va) != 0 || vv_parse(b, &vb) != 0)
			return 1;
		vv_merge(&va, &vb, &vm);
		m = vv_to_json(&vm);
		printf("%s\t%s\t%d\t%s\n", a, b, (int)vv_compare(&va, &vb), m);
		free(m);
		vv_free(&va);
		vv_free(&vb);
		vv_free(&vm);
	}
	return 0;
}
EOF
ok "$cc_bin" -std=c11 -D_GNU_SOURCE -I"$ROOT/include" -o "$TEST_TMP/vvgen" "$TEST_TMP/vvgen.c" \
	"$ROOT/src/base/vv.c" "$ROOT/src/base/buf.c" "$ROOT/src/base/xmalloc.c" \
	"$ROOT/src/base/log.c"
if [[ ! -x $TEST_TMP/vvgen ]]; then
	done_testing
fi
"$TEST_TMP/vvgen" >"$TEST_TMP/pairs.tsv"
is "$(wc -l <"$TEST_TMP/pairs.tsv" | tr -d ' ')" 300 "300 pseudo-random pairs from vv.c"

# Load them (empty = NULL) and list every pair where SQL and C disagree.
pg_psql A postgres -c "create temp table pairs (a jsonb, b jsonb, c_cmp int, c_merge jsonb)" \
	-c "\\copy pairs from '$TEST_TMP/pairs.tsv' with (format text, null '')" \
	-c "select count(*) from pairs" >"$TEST_TMP/load.out"
is "$(cat "$TEST_TMP/load.out")" 300 "pairs loaded"
pg_psql A postgres -c "create temp table pairs (a jsonb, b jsonb, c_cmp int, c_merge jsonb)" \
	-c "\\copy pairs from '$TEST_TMP/pairs.tsv' with (format text, null '')" \
	-c "select coalesce(a::text, 'NULL') || ' vs ' || coalesce(b::text, 'NULL') || ': sql '
	           || repctl.vv_cmp(a, b) || ' ' || repctl.vv_merge(a, b)::text
	           || ', C ' || c_cmp || ' ' || c_merge::text
	      from pairs
	     where repctl.vv_cmp(a, b) <> c_cmp
	        or repctl.vv_cmp(b, a) <> case c_cmp when 1 then -1 when -1 then 1 else c_cmp end
	        or repctl.vv_cmp(repctl.vv_merge(a, b), c_merge) <> 0
	        or repctl.vv_cmp(repctl.vv_merge(b, a), c_merge) <> 0" >"$TEST_TMP/diff.out"
is "$(cat "$TEST_TMP/diff.out")" "" "vv_cmp / vv_merge agree with vv_compare / vv_merge on every pair"
# the sample covers every order
is "$(cut -f3 "$TEST_TMP/pairs.tsv" | sort -n | uniq | tr '\n' ' ')" "-1 0 1 2 " \
	"the random pairs cover equal, dominates, dominated and concurrent"

done_testing
