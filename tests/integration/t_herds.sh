#!/usr/bin/env bash
# tests/integration/t_herds.sh - herds and their tables: add all tables, add
# table, remove table, add/remove/list herd(s), list tables.
#
# Proves:
#  - add all tables registers every table with a primary key of node A (both
#    schemas, the quoted composite-key table included, with their keys) and
#    names the table without a key in a warning on stderr; a second run adds
#    0 and changes nothing; a run for node B registers B's tables without
#    touching A's (once per database, as the archive guide does);
#  - --schema limits to one schema (an empty schema is an error);
#    --exclude='schema_migrations,ar_*' leaves those out (globs); Bucardo's
#    `add all tables relgroup=H db=N` works;
#  - add table takes a quoted identifier and several tables at once; a batch
#    with a missing table fails naming it and records nothing (not even the
#    new herd); a view, a table without a key, an unknown node and an invalid
#    herd name are refused and write nothing;
#  - remove table --db=a removes only node a's registration; removing
#    something not registered, or with an unknown --db / --herd, is an error;
#  - list tables / list herds in text and valid JSON, with their filters;
#  - add herd refuses a duplicate and a bad name; remove herd is refused while
#    a sync uses it and works after remove sync (its tables go with it).
# shellcheck disable=SC2119 # meta_snapshot, rc_nonzero: optional arguments
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/common.sh"
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/pg.sh"
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/fixtures.sh"

pg_start META
pg_start A
pg_start B
fx_env META
fx_rails_db A app
fx_rails_db B app
fx_install
fx_add_node a A app
fx_add_node b B app

# tables HERD NODE : the tables registered, comma separated, as list shows them
tables() {
	local args=(list tables --json) out
	[[ -n ${1:-} ]] && args+=(--herd="$1")
	[[ -n ${2:-} ]] && args+=(--db="$2")
	out=$("$REPCTL" "${args[@]}")
	json_eval "$out" "','.join(r['table'] for r in d)"
}
all_pk=$(IFS=,; echo "${FX_PK_TABLES[*]}")

# ---- add all tables ----------------------------------------------------------------
run_repctl add all tables --herd=h --db=a
is "$RC" 0 "add all tables on node a"
like "$OUT" "herd 'h' on node 'a': 6 table\(s\) added" "... reports 6 tables added"
like "$ERR" "warning: .*$FX_NOPK_TABLE.*no primary key" "... warns naming the table without a key"
is "$(grep -c . <<<"$ERR")" 1 "... and warns about nothing else"
is "$(tables h a)" "$all_pk" "every table with a key of node a is in herd h (both schemas)"
is "$(tables h b)" "" "node b has nothing registered yet"
run_repctl list tables --herd=h --db=a --json
is "$(json_eval "$OUT" "[r['key'] for r in d if r['table'] == 'public.\"Weird \"\"name\"\"\"'][0]")" "a,b" \
	"the composite key of the quoted table is recorded in order"
is "$(json_eval "$OUT" "[r['key'] for r in d if r['table'] == 'public.schema_migrations'][0]")" "version" \
	"schema_migrations is keyed on version"

snap=$(meta_snapshot)
run_repctl add all tables --herd=h --db=a
is "$RC" 0 "add all tables again"
like "$OUT" "0 table\(s\) added, 6 already present" "... adds 0"
is "$(meta_snapshot)" "$snap" "... and changes nothing"

run_repctl add all tables --herd=h --db=b
is "$RC" 0 "add all tables on node b"
like "$OUT" "herd 'h' on node 'b': 6 table\(s\) added" "... registers b's 6 tables"
is "$(tables h b)" "$all_pk" "node b's tables are in herd h"
is "$(tables h a)" "$all_pk" "node a's registrations are untouched"

run_repctl add all tables --herd=arch --db=a --schema=archive
is "$RC" 0 "add all tables --schema=archive"
is "$(tables arch a)" "archive.old_songs" "--schema takes only that schema"
is "$ERR" "" "... and has no table without a key to warn about"

refused add all tables --herd=h --db=a --schema=nosuch
like "$ERR" "no tables in schema 'nosuch'" "--schema of an empty schema: says so"

run_repctl add all tables --herd=app --db=a --exclude='schema_migrations,ar_*'
is "$RC" 0 "add all tables --exclude='schema_migrations,ar_*'"
is "$(tables app a)" 'archive.old_songs,public."Weird ""name""",public.albums,public.songs' \
	"--exclude leaves out schema_migrations and ar_internal_metadata"

run_repctl add all tables relgroup=bh db=a
is "$RC" 0 "Bucardo spelling: add all tables relgroup=bh db=a"
is "$(tables bh a)" "$all_pk" "... registers the tables in herd bh"

# ---- add table ---------------------------------------------------------------------
run_repctl add table 'public."Weird ""name"""' --herd=pick --db=a
is "$RC" 0 "add table with a quoted identifier"
is "$(tables pick a)" 'public."Weird ""name"""' "... registers exactly that table"

run_repctl add table public.songs archive.old_songs public.albums --herd=pick --db=a
is "$RC" 0 "add table with several tables"
like "$OUT" "3 table\(s\) added, 0 already present" "... adds the three"
is "$(tables pick a)" 'archive.old_songs,public."Weird ""name""",public.albums,public.songs' \
	"... all registered"

refused add table public.songs public.nosuch public.albums --herd=newherd --db=a
like "$ERR" "table public.nosuch does not exist on node 'a'" "missing table in a batch: named"
like "$ERR" "nothing was changed" "... nothing of the batch recorded"
is "$(pg_sql META postgres "SELECT count(*) FROM repctl.herd WHERE name = 'newherd'")" 0 \
	"... not even the new herd"

refused add table "$FX_VIEW" --herd=pick --db=a
like "$ERR" "$FX_VIEW on node 'a' is a view; only tables replicate" "a view is refused, saying why"

refused add table "$FX_NOPK_TABLE" --herd=pick --db=a
like "$ERR" "table $FX_NOPK_TABLE on node 'a' has no primary key" "a table without a key is refused"
like "$ERR" "ADD PRIMARY KEY" "... with a hint"

refused add table public.songs --herd=pick --db=zz
like "$ERR" "no node 'zz'" "unknown node: says so"
like "$ERR" "repctl add database zz" "... hints at add database"

refused add table public.songs --herd='bad herd' --db=a
like "$ERR" "'bad herd' is not a valid herd name" "bad herd name: refused"

refused add table public.songs --db=a
is "$RC" 2 "add table without --herd: usage error"
like "$ERR" "needs herd=" "... names the missing option"

# ---- remove table ------------------------------------------------------------------
run_repctl remove table public.schema_migrations --db=a
is "$RC" 0 "remove table public.schema_migrations --db=a"
like "$OUT" "removed 2 table registration\(s\) on node a" "... from node a's herds h and bh"
unlike "$(tables '' a)" 'schema_migrations' "node a has no schema_migrations registration left"
is "$(tables h b)" "$all_pk" "node b keeps its registration"

refused remove table public.schema_migrations --db=a
like "$ERR" "table public.schema_migrations is not in any herd on node a" \
	"removing what is not registered: says so"
refused remove table public.nosuch
like "$ERR" "table public.nosuch is not in any herd" "removing an unknown table: says so"
refused remove table public.songs --db=zz
like "$ERR" "no node 'zz'" "remove table with an unknown --db: says so"
refused remove table public.songs --herd=zz
like "$ERR" "no herd 'zz'" "remove table with an unknown --herd: says so"

# ---- listing -----------------------------------------------------------------------
run_repctl list tables
is "$RC" 0 "list tables"
like "$(head -n 1 <<<"$OUT")" '^herd +node +table +key' "list tables has a header"
like "$OUT" '^h +b +public\."Weird ""name""" +a,b' "list tables shows the quoted table with its key"
run_repctl list tables --json
is "$RC" 0 "list tables --json"
ok json_ok "$OUT"
is "$(json_eval "$OUT" 'len(d)')" "$(pg_sql META postgres 'SELECT count(*) FROM repctl.herd_table')" \
	"list tables --json has one entry per registration"
is "$(tables arch)" "archive.old_songs" "list tables --herd filters"

run_repctl list herds
is "$RC" 0 "list herds"
like "$OUT" '^h +6 +a:5, b:6' "list herds counts tables per node"
run_repctl list herds --json
is "$RC" 0 "list herds --json"
ok json_ok "$OUT"
is "$(json_eval "$OUT" "','.join(x['herd'] for x in d)")" "app,arch,bh,h,pick" "list herds --json lists every herd"
is "$(json_eval "$OUT" "[x['tables'] for x in d if x['herd'] == 'h'][0]")" 6 "... with its table count"

# ---- herds -------------------------------------------------------------------------
refused add herd h
like "$ERR" "herd 'h' already exists" "duplicate herd refused"
refused add herd
like "$ERR" "'add herd' needs a name" "add herd without a name: says so"
refused add herd 'bad herd'
like "$ERR" "is not a valid herd name" "bad herd name refused"
run_repctl add herd empty
is "$RC" 0 "add herd creates an empty herd"
run_repctl add relgroup empty2
is "$RC" 0 "Bucardo spelling: add relgroup"

run_repctl add sync hs herd=h dbs=a:source,b:target
is "$RC" 0 "add sync using herd h"
refused remove herd h
like "$ERR" "herd 'h' is used by sync\(s\) hs" "remove herd in use: names the sync"
like "$ERR" "remove those syncs first" "... and says what to do"
refused remove herd nosuch
like "$ERR" "no herd 'nosuch'" "remove of an unknown herd: says so"

run_repctl remove sync hs
is "$RC" 0 "remove sync hs"
run_repctl remove herd h
is "$RC" 0 "remove herd once no sync uses it"
is "$(pg_sql META postgres "SELECT count(*) FROM repctl.herd WHERE name = 'h'")/$(pg_sql META postgres "SELECT count(*) FROM repctl.herd_table WHERE herd = 'h'")" \
	"0/0" "the herd and its table list are gone"
is "$(tables bh a)" 'archive.old_songs,public."Weird ""name""",public.albums,public.ar_internal_metadata,public.songs' \
	"other herds are untouched"
is "$(tables app a)" 'archive.old_songs,public."Weird ""name""",public.albums,public.songs' \
	"other herds keep their tables"

done_testing
