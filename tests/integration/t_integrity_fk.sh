#!/usr/bin/env bash
# tests/integration/t_integrity_fk.sh - foreign keys hold on every node after
# every run (issue 11, item 1), although the apply runs with
# session_replication_role = replica (PostgreSQL's FK checks do not fire).
#
# Three nodes, hub a: one-way syncs ab, ba, ac, ca (bucardo_latest), each
# round runs ab, ba, ac, ca.  Tables: the harness's artists / artist_links
# (ON DELETE CASCADE) and, added here, authors / books (Rails' default:
# NO ACTION, constraint fk_rails_books_author), labels / releases (ON DELETE
# SET NULL) and comments (a parent_id tree, self-referencing, CASCADE).
#
# Scenario 1, a against b directly: a deletes a parent (artist, label,
# root comment; an author after its books, as Rails' dependent: :destroy
# does) while b, later, updates one child of it and inserts another (for
# comments a reply to the deleted subtree, and a reply to that reply).
# Scenario 2, c against b through the hub: c deletes an artist and a label
# while b edits their children; b's edits reach c (through a) before c's
# delete reaches b.
#
# Proves, after the rounds are quiet:
#  - no node holds an orphan: every FK of every node can be re-added
#    (dropped and added again in a transaction that is rolled back, which is
#    what the restore of a dump does);
#  - CASCADE: no node has the parent or any of its children (b's new
#    children, b's concurrent edit, b's replies to replies); the cascade of
#    an incoming delete is logged in repctl.conflict with the FK's name;
#  - SET NULL: the parent is gone, every child is kept with label_id NULL
#    (b's edit kept), logged naming the FK;
#  - NO ACTION: a's delete of the author reaches b while b still has books
#    of it: quarantined with constraint_name fk_rails_books_author; b's books
#    reaching a without their author are quarantined with that name too;
#    every row that differs between nodes is in an unresolved quarantine
#    entry; once b deletes its books of that author, the delete goes
#    through, every entry is resolved and the nodes are identical;
#  - every other table (and every table of the cascading cases) is
#    identical on all three nodes, and unrelated rows flowed in the same runs.
# Today the apply writes orphans (nothing quarantined, nothing logged) and
# re-adding the FKs fails on the nodes.
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

CREATE TABLE public.authors (
    id         bigint PRIMARY KEY,
    name       text,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE public.books (
    id         bigint PRIMARY KEY,
    author_id  bigint NOT NULL,
    title      text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT fk_rails_books_author FOREIGN KEY (author_id) REFERENCES public.authors (id)
);
CREATE TABLE public.labels (
    id         bigint PRIMARY KEY,
    name       text,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE public.releases (
    id         bigint PRIMARY KEY,
    label_id   bigint,
    title      text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT releases_label_fk FOREIGN KEY (label_id) REFERENCES public.labels (id)
        ON DELETE SET NULL
);
CREATE TABLE public.comments (
    id         bigint PRIMARY KEY,
    parent_id  bigint,
    body       text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT comments_parent_fk FOREIGN KEY (parent_id) REFERENCES public.comments (id)
        ON DELETE CASCADE
);
SQL
)

NODES=(a b c)
repl_setup "${NODES[@]}"
for s in ab:a:b ba:b:a ac:a:c ca:c:a; do
	IFS=: read -r name src dst <<<"$s"
	run_repctl add sync "$name" relgroup=h dbs="$src:source,$dst:target" conflict_strategy=bucardo_latest
	is "$RC" 0 "add sync $name"
done
SYNCS=(ab ba ac ca)

meta() { pg_sql meta postgres "$1"; }
on_failure_push "echo '# ---- repctl.quarantine:'; pg_sql meta postgres 'SELECT * FROM repctl.quarantine ORDER BY id' | sed 's/^/# /'"
on_failure_push "echo '# ---- repctl.conflict:'; pg_sql meta postgres 'SELECT sync, table_name, pk, local_node, remote_node, winner, rule FROM repctl.conflict ORDER BY id' | sed 's/^/# /'"

# fk_recheck NODE : every foreign key of NODE dropped and added again in a
# transaction that is rolled back (adding validates every row, as the
# restore of a dump does); prints "name: error" for each one that fails.
fk_recheck() {
	local n=$1 con tbl def out
	while IFS='|' read -r con tbl def; do
		[[ -n $con ]] || continue
		out=$(repl_psql "$n" -c "BEGIN; ALTER TABLE $tbl DROP CONSTRAINT $con;
			ALTER TABLE $tbl ADD CONSTRAINT $con $def; ROLLBACK" 2>&1) ||
			printf '%s on %s: %s\n' "$con" "$n" "${out//$'\n'/ }"
	done < <(repl_val "$n" "SELECT quote_ident(c.conname), c.conrelid::regclass, pg_get_constraintdef(c.oid)
	                          FROM pg_constraint c JOIN pg_namespace s ON s.oid = c.connamespace
	                         WHERE c.contype = 'f' AND c.conparentid = 0 AND s.nspname <> 'repctl'
	                         ORDER BY 1")
}

# fks_hold MSG : no FK violation on any node
fks_hold() {
	local n out bad=''
	for n in "${NODES[@]}"; do
		out=$(fk_recheck "$n")
		[[ -z $out ]] || bad+=$out$'\n'
	done
	bad=${bad%$'\n'}
	if [[ -z $bad ]]; then
		pass "$1: every FK of every node holds"
	else
		fail "$1: every FK of every node holds" "$bad"
	fi
	is "$(repl_val a "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND conparentid = 0
	                    AND connamespace = 'public'::regnamespace")" 4 "($1: the four FKs were checked)"
}

# ids NODE TABLE [WHERE] : "id,id,..." of TABLE on NODE
ids() { repl_val "$1" "SELECT coalesce(string_agg(id::text, ',' ORDER BY id), '') FROM $2 ${3:+WHERE $3}"; }

# on_all MSG TABLE WHERE EXPECTED : ids TABLE WHERE is EXPECTED on every node
on_all() {
	local n
	for n in "${NODES[@]}"; do
		is "$(ids "$n" "$2" "$3")" "$4" "$1 ($n)"
	done
}

# unresolved [WHERE] : "sync|table|pk|constraint" of the unresolved quarantine entries
unresolved() {
	meta "SELECT coalesce(string_agg(concat_ws('|', sync, table_name, pk::text, constraint_name), E'\n'
	                                 ORDER BY sync, table_name, pk::text), '')
	        FROM repctl.quarantine WHERE resolved_at IS NULL ${1:+AND $1}"
}

# fk_logged TABLE ID FK : repctl.conflict has an entry of TABLE key ID whose rule names FK
fk_logged() {
	[[ $(meta "SELECT count(*) FROM repctl.conflict WHERE table_name = '$1'
	             AND pk = jsonb_build_object('id', $2::bigint) AND rule LIKE '%$3%'") -gt 0 ]]
}

# sums_except NODE TABLE... : repl_sums of NODE without the given tables
sums_except() {
	local s t
	s=$(repl_sums "$1")
	shift
	for t in "$@"; do
		s=$(grep -v "^$t|" <<<"$s" || true)
	done
	printf '%s\n' "$s"
}

converge() {
	local rc=0
	repl_converge 8 "${SYNCS[@]}" || rc=$?
	is "$rc" 0 "$1: the rounds become quiet"
}

# ---- a converged start ------------------------------------------------------------------------
repl_sql a "INSERT INTO artists (id, name) VALUES (1, 'doomed by a'), (2, 'kept'), (3, 'doomed by c');
            INSERT INTO artist_links (id, artist_id, url) VALUES
                (11, 1, 'l11'), (12, 1, 'l12'), (21, 2, 'l21'), (31, 3, 'l31'), (32, 3, 'l32');
            INSERT INTO authors (id, name) VALUES (1, 'doomed by a'), (2, 'kept');
            INSERT INTO books (id, author_id, title) VALUES (11, 1, 'b11'), (12, 1, 'b12'), (21, 2, 'b21');
            INSERT INTO labels (id, name) VALUES (1, 'doomed by a'), (2, 'kept'), (3, 'doomed by c');
            INSERT INTO releases (id, label_id, title) VALUES
                (11, 1, 'r11'), (12, 1, 'r12'), (21, 2, 'r21'), (31, 3, 'r31'), (32, 3, 'r32');
            INSERT INTO comments (id, parent_id, body) VALUES
                (1, NULL, 'root'), (2, 1, 'reply'), (3, 2, 'reply to reply'),
                (10, NULL, 'kept root'), (11, 10, 'kept reply')"
converge "initial copy"
repl_same "initial copy" a b c
fks_hold "initial copy"

# ---- the concurrent changes: a and c delete parents, then b edits their children ------------------
repl_sql a "DELETE FROM artists WHERE id = 1;
            DELETE FROM labels WHERE id = 1;
            DELETE FROM comments WHERE id = 1;
            BEGIN; DELETE FROM books WHERE author_id = 1; DELETE FROM authors WHERE id = 1; COMMIT;
            INSERT INTO songs (id, title) VALUES (1, 'unrelated, from a')"
repl_sql c "DELETE FROM artists WHERE id = 3;
            DELETE FROM labels WHERE id = 3;
            INSERT INTO songs (id, title) VALUES (3, 'unrelated, from c')"
# local integrity as the nodes see it: a's and c's cascades happened there
is "$(ids a artist_links)" "21,31,32" "a: the cascade removed artist 1's links locally"
is "$(ids a releases 'label_id IS NULL')" "11,12" "a: SET NULL applied locally"
is "$(ids a comments)" "10,11" "a: the cascade removed the comment subtree locally"
# b, later (so its edits are the newer versions), knows nothing yet
repl_sql b "UPDATE artist_links SET url = 'b edit', updated_at = now() WHERE id IN (11, 31);
            INSERT INTO artist_links (id, artist_id, url) VALUES (13, 1, 'b new'), (33, 3, 'b new');
            UPDATE releases SET title = 'b edit', updated_at = now() WHERE id IN (11, 31);
            INSERT INTO releases (id, label_id, title) VALUES (13, 1, 'b new'), (33, 3, 'b new');
            UPDATE comments SET body = 'b edit', updated_at = now() WHERE id = 3;
            INSERT INTO comments (id, parent_id, body) VALUES (4, 2, 'b reply to 2');
            INSERT INTO comments (id, parent_id, body) VALUES (5, 4, 'b reply to 4');
            UPDATE books SET title = 'b edit', updated_at = now() WHERE id = 11;
            INSERT INTO books (id, author_id, title) VALUES (13, 1, 'b new');
            UPDATE artist_links SET url = 'b edit of an unrelated child', updated_at = now() WHERE id = 21;
            INSERT INTO songs (id, title) VALUES (2, 'unrelated, from b')"

converge "after the concurrent changes"
fks_hold "after the concurrent changes"

# ---- CASCADE: parent and all its children gone everywhere, logged ------------------------------
on_all "CASCADE: artists 1 and 3 are gone" artists "" "2"
on_all "CASCADE: every link of artists 1 and 3 is gone (b's edits and inserts too)" artist_links "" "21"
is "$(repl_val a "SELECT url FROM artist_links WHERE id = 21")" "b edit of an unrelated child" \
	"an unrelated child edit flowed"
on_all "CASCADE (self-referencing): the subtree of comment 1 is gone, b's replies too" comments "" "10,11"
ok fk_logged artist_links 13 artist_links_artist_id_fkey
ok fk_logged artist_links 33 artist_links_artist_id_fkey
ok fk_logged comments 4 comments_parent_fk
ok fk_logged comments 5 comments_parent_fk
like "$(meta "SELECT count(*) FROM repctl.conflict WHERE table_name = 'artist_links'
                AND pk = '{\"id\": 11}'::jsonb")" '^[1-9]' "b's edit of link 11 against a's cascaded delete: logged"

# ---- SET NULL: parent gone, children kept with NULL -------------------------------------------
on_all "SET NULL: labels 1 and 3 are gone" labels "" "2"
on_all "SET NULL: every release is kept" releases "" "11,12,13,21,31,32,33"
on_all "SET NULL: the children of labels 1 and 3 point nowhere" releases "label_id IS NULL" "11,12,13,31,32,33"
on_all "SET NULL: b's edits kept" releases "title = 'b edit'" "11,31"
ok fk_logged releases 13 releases_label_fk
ok fk_logged releases 33 releases_label_fk

# ---- NO ACTION: quarantined, never an orphan -------------------------------------------------
like "$(unresolved "table_name = 'authors'")" '^ab\|authors\|\{"id": 1\}\|fk_rails_books_author$' \
	"NO ACTION: a's delete of author 1 is quarantined on b (b still has books of it), naming the FK"
q=$(unresolved "table_name IN ('authors', 'books')")
unlike "$q" '\|$' "every quarantine entry of authors/books names its constraint"
unlike "$(unresolved "table_name IN ('authors', 'books') AND constraint_name IS DISTINCT FROM 'fk_rails_books_author'")" \
	'.' "... and it is fk_rails_books_author"
is "$(ids b books 'author_id = 1')" "11,13" "b kept its books of author 1 (and the author)"
is "$(ids a books 'author_id = 1')" "" "a has no book of author 1 (no orphan)"
# every row that differs between the nodes is quarantined
for t in authors books; do
	for n in b c; do
		diffkeys=$(
			comm -3 <(repl_val a "SELECT jsonb_build_object('id', id)::text || ' ' || md5(x::text) FROM $t x ORDER BY 1") \
				<(repl_val "$n" "SELECT jsonb_build_object('id', id)::text || ' ' || md5(x::text) FROM $t x ORDER BY 1") |
				sed 's/^\t//; s/ [0-9a-f]*$//' | sort -u
		)
		missing=''
		while IFS= read -r k; do
			[[ -n $k ]] || continue
			[[ $(meta "SELECT count(*) FROM repctl.quarantine WHERE resolved_at IS NULL
			             AND table_name = '$t' AND pk = '$k'::jsonb") -gt 0 ]] || missing+="$k "
		done <<<"$diffkeys"
		is "$missing" "" "$t: every key that differs between a and $n is quarantined"
	done
done

# ---- everything else identical, unrelated rows flowed -----------------------------------------
same_rest() {
	local a b n
	a=$(sums_except a authors books)
	for n in b c; do
		b=$(sums_except "$n" authors books)
		is "$b" "$a" "$1: every table but authors/books: $n = a"
	done
}
same_rest "after the concurrent changes"
on_all "unrelated rows flowed in the same runs" songs "" "1,2,3"

# ---- NO ACTION settled: b deletes its books of author 1; everything goes through ----------------------
repl_sql b "DELETE FROM books WHERE author_id = 1"
converge "after b deleted its books of author 1"
fks_hold "after the NO ACTION case settled"
on_all "NO ACTION: author 1 is gone everywhere" authors "" "2"
on_all "NO ACTION: no book of author 1 anywhere" books "" "21"
is "$(unresolved)" "" "every quarantine entry is resolved"
repl_same "at the end" a b c

done_testing
