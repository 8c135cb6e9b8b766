#!/usr/bin/env bash
# tests/integration/t_validate_types.sh - `repctl validate` compares enum and
# domain types by more than their name (issue 11, item 4): format_type says
# "public.mood" on both nodes however their labels or constraints differ,
# and a value one node accepts and the other refuses is quarantined there.
#
# Proves, on two nodes a and b holding public.tracks (an enum column, an
# array of that enum, a domain column) and public.ratings (a domain over a
# domain):
#  - identical types: validate passes (exit 0, no problem);
#  - an enum label added on b only: exit 1, one problem per column using the
#    enum (the column and the array column) naming the table, the column,
#    the enum, the label and both nodes, with the ADD VALUE to run on a
#    (placed after the label b has before it) and that rows using it are
#    quarantined on a; nothing else; once a has the label too, it passes;
#  - a domain CHECK that differs (same name, stricter on b): exit 1, one
#    problem naming the constraint and both definitions; a CHECK only on
#    one node, a NOT NULL only on one node, a domain over a domain whose
#    inner CHECK differs: each reported with its node and the ALTER DOMAIN;
#    after each is undone validate passes again;
#  - labels in a different order (the same set): reported as such;
#  - a label with a quote is quoted as SQL in the message and the hint.
# Today's validate compares format_type only and passes in every case.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/common.sh"
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/pg.sh"
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/fixtures.sh"

TYPES_SQL=$(
	cat <<'SQL'
CREATE TYPE public.mood AS ENUM ('sad', 'ok', 'it''s fine', 'happy');
CREATE TYPE public.level AS ENUM ('low', 'mid', 'high');
CREATE DOMAIN public.rating AS integer CONSTRAINT rating_range CHECK (VALUE BETWEEN 1 AND 5);
CREATE DOMAIN public.score AS public.rating CONSTRAINT score_even CHECK (VALUE % 2 = 0);
CREATE TABLE public.tracks (
    id         bigint PRIMARY KEY,
    m          public.mood,
    past       public.mood[],
    r          public.rating,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE public.ratings (
    id         bigint PRIMARY KEY,
    s          public.score,
    lvl        public.level,
    updated_at timestamptz NOT NULL DEFAULT now()
);
SQL
)

pg_start META
pg_start A
pg_start B
fx_env META
fx_rails_db A app
fx_rails_db B app
pg_psql A app <<<"$TYPES_SQL"
pg_psql B app <<<"$TYPES_SQL"
fx_install
fx_add_node a A app
fx_add_node b B app
for n in a b; do
	run_repctl add all tables --herd=h --db=$n
	is "$RC" 0 "add all tables --herd=h --db=$n"
done
run_repctl add sync s herd=h dbs=a:source,b:source
is "$RC" 0 "add sync s (a, b)"

# validate : run repctl validate; V = its stdout and stderr, P = its problem lines
validate() {
	run_repctl validate
	V=$OUT$'\n'$ERR
	P=$(grep '^problem: ' <<<"$V" || true)
}
validate_clean() {
	validate
	is "$RC" 0 "$1: validate exits 0"
	like "$V" '^all checks passed$' "$1: all checks passed"
	is "$P" "" "$1: no problem"
}
# nproblems N MSG : exactly N problem lines
nproblems() {
	is "$(grep -c '^problem: ' <<<"$V" || true)" "$1" "$2: exactly $1 problem(s)"
	like "$V" "^$1 problem\\(s\\) found\$" "$2: counted"
}

validate_clean "identical types"
like "$V" "^sync 's': OK \(8 table\(s\) on 2 node\(s\)\)" "... sync s OK with its 8 tables"

# ---- an enum label added on one node ---------------------------------------------------
pg_sql B app "ALTER TYPE public.mood ADD VALUE 'ecstatic'"
validate
is "$RC" 1 "enum label added on b only: exit 1"
nproblems 2 "enum label added on b only"
like "$P" "^problem: table public.tracks: column 'm' \(enum public.mood\): label 'ecstatic' exists on node 'b' but not on node 'a'\$" \
	"names the table, the column, the enum, the label and both nodes"
like "$P" "^problem: table public.tracks: column 'past' \(enum public.mood\): label 'ecstatic' exists on node 'b' but not on node 'a'\$" \
	"... and the array column of the enum"
like "$V" "^  hint: on node 'a': ALTER TYPE public.mood ADD VALUE 'ecstatic' AFTER 'happy'; until then, rows using it that replicate to 'a' are quarantined there\$" \
	"... with the ADD VALUE to run on a, and what happens meanwhile"
unlike "$V" "all checks passed" "... does not claim success"
pg_sql A app "ALTER TYPE public.mood ADD VALUE 'ecstatic' AFTER 'happy'"
validate_clean "the label added on a too"

# two labels, one in the middle and one first, on a only
pg_psql A app <<'SQL'
ALTER TYPE public.mood ADD VALUE 'numb' BEFORE 'sad';
ALTER TYPE public.mood ADD VALUE 'meh' AFTER 'ok';
SQL
validate
is "$RC" 1 "two labels added on a only: exit 1"
nproblems 2 "two labels added on a only"
like "$P" "column 'm' \(enum public.mood\): labels 'numb', 'meh' exist on node 'a' but not on node 'b'\$" \
	"names both labels, in a's order"
like "$V" "^  hint: on node 'b': ALTER TYPE public.mood ADD VALUE 'numb' BEFORE 'sad'; ALTER TYPE public.mood ADD VALUE 'meh' AFTER 'ok'; until then, rows using them" \
	"... with the ADD VALUEs that give b a's order"
pg_psql B app <<'SQL'
ALTER TYPE public.mood ADD VALUE 'numb' BEFORE 'sad';
ALTER TYPE public.mood ADD VALUE 'meh' AFTER 'ok';
SQL
validate_clean "the hint's statements run on b"

# ---- a domain CHECK that differs -------------------------------------------------------
pg_psql B app <<'SQL'
ALTER DOMAIN public.rating DROP CONSTRAINT rating_range;
ALTER DOMAIN public.rating ADD CONSTRAINT rating_range CHECK (VALUE BETWEEN 1 AND 3);
SQL
validate
is "$RC" 1 "domain CHECK stricter on b: exit 1"
# public.score is a domain over public.rating: its column reaches rating too
nproblems 2 "domain CHECK stricter on b"
like "$P" "^problem: table public.tracks: column 'r' \(domain public.rating\): constraint rating_range is CHECK \(\(\(VALUE >= 1\) AND \(VALUE <= 5\)\)\) on node 'a' but CHECK \(\(\(VALUE >= 1\) AND \(VALUE <= 3\)\)\) on node 'b'\$" \
	"names the table, the column, the domain, the constraint, both definitions and both nodes"
like "$P" "^problem: table public.ratings: column 's' \(domain public.rating\): constraint rating_range is" \
	"... and the column of the domain over it"
like "$V" "^  hint: make them equal, e.g. on node 'b': ALTER DOMAIN public.rating DROP CONSTRAINT rating_range; ALTER DOMAIN public.rating ADD CONSTRAINT rating_range CHECK \(\(\(VALUE >= 1\) AND \(VALUE <= 5\)\)\);" \
	"... with the ALTER DOMAIN statements"
pg_psql B app <<'SQL'
ALTER DOMAIN public.rating DROP CONSTRAINT rating_range;
ALTER DOMAIN public.rating ADD CONSTRAINT rating_range CHECK (VALUE BETWEEN 1 AND 5);
SQL
validate_clean "the domain CHECK made equal again"

# the same definition under another name is not a difference
pg_psql B app <<'SQL'
ALTER DOMAIN public.rating RENAME CONSTRAINT rating_range TO rating_check;
SQL
validate_clean "the same CHECK under another name"
pg_sql B app "ALTER DOMAIN public.rating RENAME CONSTRAINT rating_check TO rating_range"

# a CHECK only on one node, on the outer domain of a domain over a domain
pg_sql A app "ALTER DOMAIN public.score ADD CONSTRAINT score_small CHECK (VALUE < 100)"
validate
is "$RC" 1 "a CHECK only on a: exit 1"
nproblems 1 "a CHECK only on a"
like "$P" "^problem: table public.ratings: column 's' \(domain public.score\): constraint score_small CHECK \(\(\(VALUE\)::integer < 100\)\) exists on node 'a' but not on node 'b'\$" \
	"names the constraint, its definition and both nodes"
like "$V" "^  hint: on node 'b': ALTER DOMAIN public.score ADD CONSTRAINT score_small CHECK \(\(\(VALUE\)::integer < 100\)\);" \
	"... with the ADD CONSTRAINT"
pg_sql A app "ALTER DOMAIN public.score DROP CONSTRAINT score_small"
validate_clean "the CHECK dropped again"

# NOT NULL on one node
pg_sql B app "ALTER DOMAIN public.rating SET NOT NULL"
validate
is "$RC" 1 "a domain NOT NULL only on b: exit 1"
like "$P" "^problem: table public.tracks: column 'r' \(domain public.rating\): NOT NULL on node 'b' but not on node 'a'\$" \
	"names the domain and the node with NOT NULL"
like "$V" "^  hint: on node 'a': ALTER DOMAIN public.rating SET NOT NULL;" "... with the fix"
pg_sql B app "ALTER DOMAIN public.rating DROP NOT NULL"
validate_clean "NOT NULL dropped again"

# ---- labels in a different order -----------------------------------------------------------
pg_sql A app "ALTER TYPE public.level ADD VALUE 'top'"
pg_sql B app "ALTER TYPE public.level ADD VALUE 'top' BEFORE 'low'"
validate
is "$RC" 1 "the same labels in a different order: exit 1"
nproblems 1 "the same labels in a different order"
like "$P" "^problem: table public.ratings: column 'lvl' \(enum public.level\): the labels are in a different order: 'low', 'mid', 'high', 'top' on node 'a' but 'top', 'low', 'mid', 'high' on node 'b'\$" \
	"names both orders and both nodes"

# ---- a label with a quote --------------------------------------------------------------------
pg_sql A app "ALTER TYPE public.mood ADD VALUE 'don''t care' AFTER 'it''s fine'"
validate
is "$RC" 1 "a quoted label on a only: exit 1"
has_str "$V" "column 'm' (enum public.mood): label 'don''t care' exists on node 'a' but not on node 'b'" \
	"the label is quoted as SQL"
has_str "$V" "ALTER TYPE public.mood ADD VALUE 'don''t care' AFTER 'it''s fine';" "... in the hint too"

done_testing
