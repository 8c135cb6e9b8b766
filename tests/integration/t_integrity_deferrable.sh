#!/usr/bin/env bash
# tests/integration/t_integrity_deferrable.sh - DEFERRABLE unique constraints
# are enforced by the apply like plain ones (issue 11, item 2), although
# PostgreSQL does not fire their recheck under session_replication_role =
# replica.
#
# Pair a <-> b (syncs ab and ba, bucardo_latest).  pages has UNIQUE (slug)
# DEFERRABLE INITIALLY DEFERRED (pages_slug_key), posts the same DEFERRABLE
# INITIALLY IMMEDIATE (posts_slug_key).  a inserts slug 's' with key 1, b
# inserts slug 's' with key 2 (in both tables), each with other rows; a also
# swaps the slugs of two rows in one statement (legal: the constraint is
# deferrable).
#
# Proves, after the rounds are quiet:
#  - no node has two rows with slug 's' (nor any duplicate slug: every
#    unique index of every node can be rebuilt);
#  - the colliding incoming row is quarantined in each direction, naming
#    the constraint, and each node keeps its own row;
#  - every other row flowed (the other new pages and posts, the swap, an
#    unrelated table);
#  - `conflicts resolve ID keep=incoming` settles it as for a plain unique
#    constraint: the nodes converge on a's row, nothing left unresolved.
# Today both nodes end with two rows with slug 's', nothing quarantined.
# shellcheck disable=SC2317 # helpers are called through ok / on_failure_push
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/common.sh"
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/pg.sh"
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/fixtures.sh"
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/repl.sh"

REPL_SCHEMA_SQL+=$(
	cat <<'SQL'

CREATE TABLE public.pages (
    id         bigint PRIMARY KEY,
    slug       text NOT NULL,
    title      text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pages_slug_key UNIQUE (slug) DEFERRABLE INITIALLY DEFERRED
);
CREATE TABLE public.posts (
    id         bigint PRIMARY KEY,
    slug       text NOT NULL,
    title      text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT posts_slug_key UNIQUE (slug) DEFERRABLE INITIALLY IMMEDIATE
);
SQL
)

NODES=(a b)
repl_setup "${NODES[@]}"
for s in ab:a:b ba:b:a; do
	IFS=: read -r name src dst <<<"$s"
	run_repctl add sync "$name" relgroup=h dbs="$src:source,$dst:target" conflict_strategy=bucardo_latest
	is "$RC" 0 "add sync $name"
done

meta() { pg_sql meta postgres "$1"; }
on_failure_push "echo '# ---- repctl.quarantine:'; pg_sql meta postgres 'SELECT * FROM repctl.quarantine ORDER BY id' | sed 's/^/# /'"

converge() {
	local rc=0
	repl_converge 6 ab ba || rc=$?
	is "$rc" 0 "$1: the rounds become quiet"
}

# unique_recheck NODE : every unique index of NODE's tables rebuilt in a
# transaction that is rolled back (a duplicate makes the rebuild fail);
# prints "index: error" for each one that fails
unique_recheck() {
	local n=$1 idx out
	while IFS= read -r idx; do
		[[ -n $idx ]] || continue
		out=$(repl_psql "$n" -c "BEGIN; REINDEX INDEX $idx; ROLLBACK" 2>&1) ||
			printf '%s on %s: %s\n' "$idx" "$n" "${out//$'\n'/ }"
	done < <(repl_val "$n" "SELECT i.indexrelid::regclass FROM pg_index i
	                          JOIN pg_class c ON c.oid = i.indexrelid
	                          JOIN pg_namespace s ON s.oid = c.relnamespace
	                         WHERE i.indisunique AND c.relkind = 'i' AND s.nspname = 'public'
	                         ORDER BY 1")
}

uniques_hold() {
	local n out bad=''
	for n in "${NODES[@]}"; do
		out=$(unique_recheck "$n")
		[[ -z $out ]] || bad+=$out$'\n'
	done
	bad=${bad%$'\n'}
	if [[ -z $bad ]]; then
		pass "$1: every unique index of every node holds"
	else
		fail "$1: every unique index of every node holds" "$bad"
	fi
}

# rows NODE TABLE : "id=slug,..."
rows() { repl_val "$1" "SELECT coalesce(string_agg(id || '=' || slug, ',' ORDER BY id), '') FROM $2"; }

# ---- a converged start; the recheck does see a duplicate ----------------------------------------
repl_sql a "INSERT INTO pages (id, slug) VALUES (10, 'x'), (11, 'y');
            INSERT INTO posts (id, slug) VALUES (10, 'x'), (11, 'y')"
converge "initial copy"
repl_same "initial copy" a b
uniques_hold "initial copy"

# ---- both nodes insert slug 's'; a swaps two slugs; other rows ----------------------------------
for t in pages posts; do
	repl_sql a "INSERT INTO $t (id, slug, title) VALUES (1, 's', 'from a'), (3, 'a-only', 'from a');
	            UPDATE $t SET slug = CASE id WHEN 10 THEN 'y' ELSE 'x' END, updated_at = now()
	             WHERE id IN (10, 11)"
	repl_sql b "INSERT INTO $t (id, slug, title) VALUES (2, 's', 'from b'), (4, 'b-only', 'from b')"
done
repl_sql a "INSERT INTO songs (id, title) VALUES (1, 'unrelated, from a')"
repl_sql b "INSERT INTO songs (id, title) VALUES (2, 'unrelated, from b')"

converge "after both inserted slug 's'"
uniques_hold "after both inserted slug 's'"
for t in pages posts; do
	con=${t}_slug_key
	for n in a b; do
		is "$(repl_val "$n" "SELECT count(*) FROM $t WHERE slug = 's'")" 1 "$t: one row with slug 's' on $n"
	done
	is "$(rows a "$t")" "1=s,3=a-only,4=b-only,10=y,11=x" "$t on a: its own 's', every other row, the swap"
	is "$(rows b "$t")" "2=s,3=a-only,4=b-only,10=y,11=x" "$t on b: its own 's', every other row, the swap"
	is "$(meta "SELECT coalesce(string_agg(concat_ws('|', sync, pk::text, constraint_name), ',' ORDER BY sync), '')
	              FROM repctl.quarantine WHERE table_name = '$t' AND resolved_at IS NULL")" \
		"ab|{\"id\": 1}|$con,ba|{\"id\": 2}|$con" "$t: the colliding row quarantined in each direction, naming $con"
	like "$(meta "SELECT string_agg(reason, ' / ') FROM repctl.quarantine WHERE table_name = '$t'")" \
		'[a-z]' "$t: the quarantine entries have a reason"
done
is "$(repl_val a "SELECT count(*) FROM songs")/$(repl_val b "SELECT count(*) FROM songs")" 2/2 \
	"an unrelated table flowed in the same runs"

# ---- settled as for a plain unique constraint -------------------------------------------------
for t in pages posts; do
	id=$(meta "SELECT id FROM repctl.quarantine WHERE sync = 'ab' AND table_name = '$t' AND resolved_at IS NULL")
	if [[ -z $id ]]; then
		fail "$t: no quarantine entry of sync ab to resolve"
		continue
	fi
	run_repctl conflicts resolve "$id" keep=incoming
	is "$RC" 0 "conflicts resolve $id keep=incoming ($t) ${ERR:0:200}"
done
converge "after the resolve"
uniques_hold "after the resolve"
repl_same "after the resolve" a b
for t in pages posts; do
	is "$(repl_val b "SELECT id || ' ' || title FROM $t WHERE slug = 's'")" "1 from a" "$t: a's row won on b"
done
is "$(meta "SELECT count(*) FROM repctl.quarantine WHERE resolved_at IS NULL")" 0 "nothing left unresolved"

done_testing
