#!/usr/bin/env bash
# tests/integration/t_compare_integrity.sh - `repctl compare` reports the
# constraint violations that exist on the nodes (issue 11, item 1): the
# apply runs with session_replication_role = replica, so PostgreSQL checks
# neither foreign keys nor DEFERRABLE unique constraints for the rows it
# writes, and two nodes can hold the same orphans: equal, yet broken (a
# restore of a dump would fail on them).
#
# Proves, on two nodes a and b with syncs ab and ba:
#  - clean nodes: compare exits 0 and says every foreign key and deferrable
#    unique constraint holds (counting them);
#  - orphan child rows, the same on both nodes (written with
#    session_replication_role = replica, behind capture's back, so every
#    table is still equal): compare exits 1 and names, per node, the table,
#    the foreign key, the count and example keys with the dangling values
#    (PostgreSQL's "(col)=(value)"), for a one-column FK and a composite one
#    with a quoted name; a row with a NULL in the composite FK is not an
#    orphan (MATCH SIMPLE); the summary counts them and the equal-rows
#    summary still says the rows are equal;
#  - duplicate values under a DEFERRABLE unique constraint (written the
#    same way): named with the constraint, the value, the keys of the rows
#    holding it and the counts; NULLs are not duplicates;
#  - --table limits the check to that table's constraints;
#  - once the rows are fixed, compare exits 0 again.
# Today's compare says every table is equal and exits 0.
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

CREATE TABLE public.genres (
    id         bigint PRIMARY KEY,
    slug       text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT genres_slug_key UNIQUE (slug) DEFERRABLE INITIALLY IMMEDIATE
);
CREATE TABLE public.discs (
    artist_id  bigint,
    no         integer,
    title      text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (artist_id, no)
);
CREATE TABLE public.disc_tracks (
    id         bigint PRIMARY KEY,
    artist_id  bigint,
    disc_no    integer,
    title      text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT "disc FK" FOREIGN KEY (artist_id, disc_no) REFERENCES public.discs (artist_id, no)
);
SQL
)

repl_setup a b
run_repctl add sync ab herd=h dbs=a:source,b:target
is "$RC" 0 "add sync ab"
run_repctl add sync ba herd=h dbs=b:source,a:target
is "$RC" 0 "add sync ba"

repl_sql a "INSERT INTO artists (id, name) VALUES (1, 'one'), (2, 'two');
            INSERT INTO artist_links (id, artist_id, url) VALUES (11, 1, 'l11'), (21, 2, 'l21');
            INSERT INTO genres (id, slug) VALUES (1, 'rock'), (2, 'jazz'), (3, NULL);
            INSERT INTO discs (artist_id, no, title) VALUES (1, 1, 'first');
            INSERT INTO disc_tracks (id, artist_id, disc_no, title) VALUES (1, 1, 1, 'track')"
ok repl_converge 5 ab ba
repl_same "start" a b

# ---- clean ----------------------------------------------------------------------------------
run_repctl compare ab
is "$RC" 0 "clean nodes: compare exits 0"
like "$OUT" "^compare ab: all [0-9]+ table\\(s\\) equal on a, b" "... every table equal"
like "$OUT" "^compare ab: every foreign key \\(2\\) and deferrable unique constraint \\(1\\) holds on a, b\$" \
	"... every foreign key and deferrable unique constraint holds, counted"

# ---- orphans and duplicates, the same on both nodes, behind capture's back ------------------
for n in a b; do
	repl_psql "$n" <<'SQL'
BEGIN;
SET LOCAL session_replication_role = replica;
SET LOCAL repctl.origin = 'corruption';
INSERT INTO artist_links (id, artist_id, url, updated_at) VALUES (901, 999, 'orphan', '2024-01-01'),
    (902, 998, 'orphan', '2024-01-01'), (903, 1, 'fine', '2024-01-01');
INSERT INTO disc_tracks (id, artist_id, disc_no, title, updated_at) VALUES
    (901, 1, 77, 'orphan', '2024-01-01'), (902, 1, NULL, 'not checked: MATCH SIMPLE', '2024-01-01'),
    (903, NULL, 5, 'not checked', '2024-01-01');
INSERT INTO genres (id, slug, updated_at) VALUES (901, 'rock', '2024-01-01'), (902, 'rock', '2024-01-01'),
    (903, 'jazz', '2024-01-01'), (904, NULL, '2024-01-01');
COMMIT;
SQL
done
# they really are violations: re-adding the constraints fails
fails repl_sql a "BEGIN; ALTER TABLE artist_links DROP CONSTRAINT artist_links_artist_id_fkey;
                  ALTER TABLE artist_links ADD FOREIGN KEY (artist_id) REFERENCES artists (id); ROLLBACK"
fails repl_sql a "BEGIN; ALTER TABLE genres DROP CONSTRAINT genres_slug_key;
                  ALTER TABLE genres ADD UNIQUE (slug); ROLLBACK"

run_repctl compare ab
printf '%s\n' "$OUT" | sed 's/^/#   /'
is "$RC" 1 "orphans and duplicates: compare exits 1"
like "$OUT" "^compare ab: all [0-9]+ table\\(s\\) equal on a, b" "... although every table is equal"
for n in a b; do
	like "$OUT" "^public.artist_links: foreign key artist_links_artist_id_fkey violated on node '$n': 2 row\\(s\\) whose \\(artist_id\\) is not present in public.artists\$" \
		"$n: names the table, the FK, the node and the count"
	like "$OUT" "^  public.artist_links \\{\"id\": 901\\}: \\(artist_id\\)=\\(999\\) on $n\$" "$n: example orphan 901"
	like "$OUT" "^  public.artist_links \\{\"id\": 902\\}: \\(artist_id\\)=\\(998\\) on $n\$" "$n: example orphan 902"
	like "$OUT" "^public.disc_tracks: foreign key \"disc FK\" violated on node '$n': 1 row\\(s\\) whose \\(artist_id, disc_no\\) is not present in public.discs\$" \
		"$n: the composite FK with a quoted name, one orphan (NULLs not checked)"
	like "$OUT" "^  public.disc_tracks \\{\"id\": 901\\}: \\(artist_id, disc_no\\)=\\(1, 77\\) on $n\$" "$n: its example"
	like "$OUT" "^public.genres: deferrable unique constraint genres_slug_key violated on node '$n': 2 value\\(s\\) of \\(slug\\) held by more than one row \\(5 row\\(s\\)\\)\$" \
		"$n: names the deferrable unique constraint, the counts (NULLs not duplicates)"
	like "$OUT" "^  public.genres \\(slug\\)=\\(rock\\): \\{\"id\": 1\\}, \\{\"id\": 901\\}, \\{\"id\": 902\\} on $n\$" \
		"$n: the duplicated value and the keys holding it"
	like "$OUT" "^  public.genres \\(slug\\)=\\(jazz\\): \\{\"id\": 2\\}, \\{\"id\": 903\\} on $n\$" "$n: the other one"
done
unlike "$OUT" "\\{\"id\": (903|902)\\}: \\(artist_id, disc_no\\)" "rows with a NULL in the FK are not orphans"
unlike "$OUT" "\\{\"id\": 903\\}: \\(artist_id\\)" "a row whose parent exists is not an orphan"
like "$OUT" "^compare ab: 6 constraint violation\\(s\\) on a, b: 4 foreign key\\(s\\) with 6 orphan row\\(s\\), 2 deferrable unique constraint\\(s\\) with 4 duplicated value\\(s\\)\$" \
	"the summary counts them"
like "$OUT" "^hint: " "... with a hint"

run_repctl compare h
is "$RC" 1 "compare of the herd: exit 1 too"
like "$OUT" "foreign key artist_links_artist_id_fkey violated on node 'a'" "... names the FK"

run_repctl compare ab --table=public.songs
is "$RC" 0 "--table=public.songs: exit 0 (its table has no such constraint)"
unlike "$OUT" "violated" "... nothing about the other tables"
run_repctl compare ab --table=public.genres
is "$RC" 1 "--table=public.genres: exit 1"
like "$OUT" "genres_slug_key violated" "... its constraint"
unlike "$OUT" "foreign key" "... and no other table's"

# ---- fixed ------------------------------------------------------------------------------------
for n in a b; do
	repl_psql "$n" <<'SQL'
BEGIN;
SET LOCAL repctl.origin = 'corruption';
DELETE FROM artist_links WHERE id IN (901, 902, 903);
DELETE FROM disc_tracks WHERE id IN (901, 902, 903);
DELETE FROM genres WHERE id IN (901, 902, 903, 904);
COMMIT;
SQL
done
run_repctl compare ab
is "$RC" 0 "after the fix: compare exits 0"
like "$OUT" "^compare ab: every foreign key \\(2\\) and deferrable unique constraint \\(1\\) holds on a, b\$" \
	"... every constraint holds"

done_testing
