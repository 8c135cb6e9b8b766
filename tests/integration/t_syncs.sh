#!/usr/bin/env bash
# tests/integration/t_syncs.sh - add / update / list / remove sync.
#
# Proves:
#  - the archive guide (README): add all tables once per node, remove table of
#    Rails' bookkeeping tables on every node at once; its Bucardo spelling
#    works verbatim:
#      add sync cava_to_juke relgroup=archive_herd
#          dbs=cavaforgepad:source,jukebox:target conflict_strategy=bucardo_latest
#    and the reverse sync; a 3-node mesh dbs=a:source,b:source,c:source
#    conflict_strategy=latest; list syncs (text and JSON) shows the native
#    strategy "latest" and the dbs with roles;
#  - each bad input is refused with a specific message, a non-zero exit and
#    nothing written: unknown strategy (valid ones listed), unknown node in
#    dbs, role typo a:sauce, a single node, a node twice, no source, unknown
#    herd, herd without tables, duplicate sync name, bad sync name,
#    interval=abc / 0, onetimecopy=5, status=bogus, unknown option;
#  - update sync conflict_strategy=first and the alias bucardo_first, interval=,
#    status=; an unknown sync, a bad strategy and an empty update are refused;
#  - remove sync removes it and its node list; a second remove is an error;
#  - add sync warns (naming table and node) when a herd table is registered on
#    one node of the sync but not on another, and only about those tables.
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
fx_rails_db A cava
fx_rails_db B juke
fx_rails_db A mesh_a
fx_rails_db B mesh_b
fx_rails_db A mesh_c
fx_install
fx_add_node cavaforgepad A cava
fx_add_node jukebox B juke
fx_add_node a A mesh_a
fx_add_node b B mesh_b
fx_add_node c A mesh_c

# sync_field SYNC KEY : a field of list syncs --json
sync_field() {
	local out
	out=$("$REPCTL" list syncs --json)
	json_eval "$out" "[s['$2'] for s in d if s['name'] == '$1'][0]"
}

# ---- the archive guide ---------------------------------------------------------------
for n in cavaforgepad jukebox; do
	run_repctl add all tables --herd=archive_herd --db=$n
	is "$RC" 0 "add all tables --herd=archive_herd --db=$n"
done

# README step 6: leave out Rails' bookkeeping tables, on every node at once.
run_repctl remove table public.schema_migrations public.ar_internal_metadata
is "$RC" 0 "remove table schema_migrations ar_internal_metadata (every node)"
like "$OUT" "removed 4 table registration\(s\) on all nodes" "... 2 tables on 2 nodes"
for n in cavaforgepad jukebox; do
	out=$("$REPCTL" list tables --herd=archive_herd --db=$n --json)
	is "$(json_eval "$out" "','.join(r['table'] for r in d)")" \
		'archive.old_songs,public."Weird ""name""",public.albums,public.songs' \
		"node $n keeps the other four tables"
done

run_repctl add sync cava_to_juke relgroup=archive_herd dbs=cavaforgepad:source,jukebox:target \
	conflict_strategy=bucardo_latest
is "$RC" 0 "archive guide: add sync cava_to_juke (Bucardo spelling)"
like "$OUT" "sync 'cava_to_juke' added" "... reports the sync"
is "$ERR" "" "... without warnings (every table registered on both nodes)"

run_repctl add sync juke_to_cava relgroup=archive_herd dbs=jukebox:source,cavaforgepad:target \
	conflict_strategy=bucardo_latest
is "$RC" 0 "archive guide: the reverse sync juke_to_cava"

run_repctl list syncs
is "$RC" 0 "list syncs"
like "$OUT" '^cava_to_juke +active +archive_herd +cavaforgepad:source,jukebox:target +latest ' \
	"list syncs shows cava_to_juke with its dbs and strategy latest"
like "$OUT" '^juke_to_cava +active +archive_herd +jukebox:source,cavaforgepad:target +latest ' \
	"list syncs shows juke_to_cava"
run_repctl list syncs --json
ok json_ok "$OUT"
is "$(sync_field cava_to_juke conflict_strategy)" latest "bucardo_latest is stored as latest"
is "$(sync_field cava_to_juke herd)" archive_herd "relgroup= is the herd"
is "$(sync_field cava_to_juke dbs)" "cavaforgepad:source,jukebox:target" "dbs with roles, in order"

# ---- a 3-node mesh -------------------------------------------------------------------
for n in a b c; do
	run_repctl add all tables --herd=mesh_herd --db=$n
	is "$RC" 0 "add all tables --herd=mesh_herd --db=$n"
done
run_repctl add sync mesh herd=mesh_herd dbs=a:source,b:source,c:source conflict_strategy=latest
is "$RC" 0 "3-node mesh sync"
is "$(sync_field mesh dbs)" "a:source,b:source,c:source" "mesh: three sources"
is "$(sync_field mesh conflict_strategy)" latest "mesh: strategy latest"
is "$(pg_sql META postgres "SELECT string_agg(node || ':' || role, ',' ORDER BY ord) FROM repctl.sync_node WHERE sync = 'mesh'")" \
	"a:source,b:source,c:source" "mesh: sync_node rows"

# ---- bad inputs ------------------------------------------------------------------------
refused add sync s1 herd=mesh_herd dbs=a:source,b:target conflict_strategy=newest
like "$ERR" "unknown conflict_strategy 'newest'" "unknown strategy: named"
like "$ERR" "latest, first, source, target, skip, abort" "unknown strategy: valid ones listed"
like "$ERR" "bucardo_latest" "unknown strategy: Bucardo names listed too"

refused add sync s1 herd=mesh_herd dbs=a:source,zz:target
like "$ERR" "no node 'zz'" "unknown node in dbs: named"
like "$ERR" "repctl add database zz" "... with a hint"

refused add sync s1 herd=mesh_herd dbs=a:sauce,b:target
like "$ERR" "unknown role 'sauce' for node 'a'" "role typo: named"
like "$ERR" "NODE:source or NODE:target" "role typo: valid roles shown"

refused add sync s1 herd=mesh_herd dbs=a:source
like "$ERR" "at least two nodes" "single node: refused"

refused add sync s1 herd=mesh_herd dbs=a:source,b:target,a:target
like "$ERR" "node 'a' is listed twice" "duplicate node: refused"

refused add sync s1 herd=mesh_herd dbs=a:target,b:target
like "$ERR" "no node is a source" "no source: refused"

refused add sync s1 herd=nosuch dbs=a:source,b:target
like "$ERR" "no herd 'nosuch'" "unknown herd: named"
like "$ERR" "add all tables --herd=nosuch" "unknown herd: hint"

run_repctl add herd empty_herd
is "$RC" 0 "add herd empty_herd"
refused add sync s1 herd=empty_herd dbs=a:source,b:target
like "$ERR" "herd 'empty_herd' has no tables" "herd without tables: refused"

refused add sync cava_to_juke herd=mesh_herd dbs=a:source,b:target
like "$ERR" "sync 'cava_to_juke' already exists" "duplicate sync name: refused"

refused add sync 'bad name' herd=mesh_herd dbs=a:source,b:target
like "$ERR" "'bad name' is not a valid sync name" "bad sync name: refused"

refused add sync s1 herd=mesh_herd dbs=a:source,b:target interval=abc
like "$ERR" "interval=abc: give a number of seconds" "interval=abc: refused"
refused add sync s1 herd=mesh_herd dbs=a:source,b:target interval=0
like "$ERR" "interval=0: give a number of seconds from 1" "interval=0: refused"

refused add sync s1 herd=mesh_herd dbs=a:source,b:target onetimecopy=5
like "$ERR" "onetimecopy=5: use 0 .*, 1 .* or 2" "onetimecopy=5: refused, valid values shown"

refused add sync s1 herd=mesh_herd dbs=a:source,b:target status=bogus
like "$ERR" "status=bogus: use active or inactive" "status=bogus: refused"

refused add sync s1 herd=mesh_herd dbs=a:source,b:target colour=blue
is "$RC" 2 "unknown option: usage error"
like "$ERR" "unknown option 'colour' for 'add sync'" "unknown option: named"

refused add sync s1 herd=mesh_herd
like "$ERR" "'add sync' needs dbs=" "missing dbs=: refused"

# ---- update sync ---------------------------------------------------------------------
run_repctl update sync cava_to_juke conflict_strategy=first
is "$RC" 0 "update sync conflict_strategy=first"
is "$(sync_field cava_to_juke conflict_strategy)" first "... stored"
run_repctl update sync juke_to_cava conflict_strategy=bucardo_first
is "$RC" 0 "update sync conflict_strategy=bucardo_first"
is "$(sync_field juke_to_cava conflict_strategy)" first "... stored as first"
run_repctl update sync mesh interval=30 status=inactive
is "$RC" 0 "update sync interval=30 status=inactive"
is "$(sync_field mesh interval)/$(sync_field mesh status)" "30/inactive" "... stored"

refused update sync nosuch conflict_strategy=first
like "$ERR" "no sync 'nosuch'" "update of an unknown sync: named"
like "$ERR" "list syncs" "... with a hint"
refused update sync cava_to_juke conflict_strategy=bogus
like "$ERR" "unknown conflict_strategy 'bogus'" "update with a bad strategy: refused"
refused update sync cava_to_juke interval=abc
like "$ERR" "interval=abc" "update with a bad interval: refused"
refused update sync cava_to_juke
like "$ERR" "nothing to change" "empty update: refused"

# ---- remove sync ---------------------------------------------------------------------
run_repctl remove sync juke_to_cava
is "$RC" 0 "remove sync juke_to_cava"
is "$(pg_sql META postgres "SELECT count(*) FROM repctl.sync WHERE name = 'juke_to_cava'")/$(pg_sql META postgres "SELECT count(*) FROM repctl.sync_node WHERE sync = 'juke_to_cava'")" \
	"0/0" "the sync and its node list are gone"
run_repctl list syncs
unlike "$OUT" 'juke_to_cava' "list syncs no longer shows it"
like "$OUT" 'cava_to_juke' "the other syncs stay"
refused remove sync juke_to_cava
like "$ERR" "no sync 'juke_to_cava'" "a second remove: says there is no such sync"

# ---- a table registered on one node only ---------------------------------------------
run_repctl add table public.songs public.albums --herd=partial --db=a
is "$RC" 0 "add table songs, albums on a"
run_repctl add table public.songs --herd=partial --db=b
is "$RC" 0 "add table songs on b"
run_repctl add sync partial_sync herd=partial dbs=a:source,b:target
is "$RC" 0 "add sync with a table missing on one node still succeeds"
like "$ERR" "warning: table public.albums is registered on a but not on node 'b'" \
	"... warns naming the table and the node"
like "$ERR" "add all tables --herd=partial --db=b" "... with a hint"
unlike "$ERR" "public.songs" "... and no warning for the table registered on both"

done_testing
