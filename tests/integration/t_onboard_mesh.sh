#!/usr/bin/env bash
# t_onboard_mesh.sh - repctl onboard --mesh: a client joins the primary's
# multi-source sync (full mesh) instead of getting a pair of syncs.
#
# Proves:
#  - --mesh is refused, changing nothing, while the multi-source sync has
#    onetimecopy=1 (its new edges would empty the other nodes' tables);
#  - onboard --mesh creates the client's tables, fills them from the primary
#    with a one-time fill sync, makes the client a source of the
#    multi-source sync, and removes the fill sync: no pair of syncs, no
#    leftover sync; the client's rows equal the primary's;
#  - a rerun finds every step done;
#  - changes made on the client and on the other node reach everyone when
#    the multi-source sync runs (repctl run), with nothing to do once
#    converged;
#  - offboard removes the client from the sync (which keeps running
#    between the other two), its positions and its capture; its rows stay.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/common.sh"
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/pg.sh"
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/fixtures.sh"

DB=archive_production
SCHEMA="
CREATE TABLE songs (id bigint PRIMARY KEY, title text NOT NULL, updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE tags (id bigint PRIMARY KEY, name text);
"
for n in meta cava juke c2; do pg_start "$n"; done
fx_env meta
REPCTL_NODE=cavaforgepad
export REPCTL_NODE
for n in cava juke; do
	pg_createdb "$n" "$DB"
	pg_psql "$n" "$DB" -q <<<"$SCHEMA"
done
pg_createdb c2 "$DB"
pg_createdb c2 otherdb
pg_sql cava "$DB" "INSERT INTO songs (id, title) SELECT g, 'song ' || g FROM generate_series(1, 300) g;
  INSERT INTO tags SELECT g, 'tag ' || g FROM generate_series(1, 20) g"

q() { pg_sql "$1" "$DB" "$2"; }
msql() { pg_sql meta postgres "$1"; }
rc() { run_repctl "$@"; is "$RC" 0 "repctl $* (stderr: ${ERR:0:400})"; }
sums() { local t; for t in songs tags; do q "$1" "SELECT '$t ' || count(*) || ' ' || md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM $t x"; done; }
converge() { # run the mesh until a run moves nothing
	local i
	for ((i = 0; i < 6; i++)); do
		run_repctl run archive
		[[ $RC == 0 ]] || return 1
		[[ $OUT == *"I/U/D 0/0/0, 0 conflict(s)"* ]] && return 0
	done
	return 1
}

fx_install
for n in cavaforgepad:cava jukebox:juke; do
	rc add database "${n%%:*}" dbname=$DB host=127.0.0.1 port="$(pg_port "${n#*:}")" user=postgres
	rc add all tables --herd=h --db="${n%%:*}"
done
rc add sync archive herd=h dbs=cavaforgepad:source,jukebox:source conflict_strategy=latest onetimecopy=1
ok converge
is "$(sums juke)" "$(sums cava)" "the mesh of two converged"

# refused while the mesh would empty tables on its new edges
before=$(meta_snapshot)
run_repctl onboard client3 host=127.0.0.1 port="$(pg_port c2)" user=postgres dbname=otherdb --from cavaforgepad --mesh
rc_nonzero "--mesh with onetimecopy=1: refused"
like "$ERR" "sync 'archive' has onetimecopy=1" "... naming the sync and the setting"
like "$ERR" "update sync archive onetimecopy=0" "... and the fix"
is "$(meta_snapshot)" "$before" "... changing nothing in the metadata"
is "$(pg_sql c2 otherdb "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")" 0 "... nor on the client"
rc update sync archive onetimecopy=0

# onboard --mesh
C2=(client2 host=127.0.0.1 port="$(pg_port c2)" user=postgres dbname=$DB --from cavaforgepad --mesh)
run_repctl onboard "${C2[@]}"
is "$RC" 0 "onboard --mesh (stderr: ${ERR:0:600})"
printf '%s\n' "$OUT" | sed 's/^/#   /'
like "$OUT" "tables: created 2 table\\(s\\)" "the tables are created"
like "$OUT" "syncs: added onboard_client2 " "a one-time fill sync"
like "$OUT" "initial copy 'cavaforgepad' -> 'client2': 2 table\\(s\\), 320 row\\(s\\)" "the initial copy"
like "$OUT" "mesh: 'client2' is now a source of archive" "client2 joins the multi-source sync"
is "$(sums c2)" "$(sums cava)" "client2 has the primary's rows"
is "$(msql "SELECT string_agg(name, ' ' ORDER BY name) FROM repctl.sync")" "archive" "no pair, no leftover fill sync"
is "$(msql "SELECT string_agg(node || ':' || role, ' ' ORDER BY ord) FROM repctl.sync_node WHERE sync = 'archive'")" \
	"cavaforgepad:source jukebox:source client2:source" "client2 is the third source"

run_repctl onboard "${C2[@]}"
is "$RC" 0 "a rerun exits 0"
like "$OUT" "initial copy: done: 'client2' is in the multi-source sync" "rerun: the copy is done"
like "$OUT" "mesh: done" "rerun: the membership is done"
is "$(msql "SELECT count(*) FROM repctl.sync_node WHERE node = 'client2'")" 1 "nothing doubled"

# the mesh of three
ok converge
is "$(sums c2)" "$(sums cava)" "converged: client2 = the primary (no echo, nothing changed by the first runs)"
q c2 "INSERT INTO songs (id, title) VALUES (1001, 'from client2'); UPDATE tags SET name = 'c2' WHERE id = 3"
q juke "INSERT INTO songs (id, title) VALUES (2001, 'from jukebox')"
ok converge
is "$(sums cava)" "$(sums c2)" "client2's and jukebox's changes reached the primary"
is "$(sums juke)" "$(sums c2)" "... and every node"
is "$(q cava "SELECT name FROM tags WHERE id = 3")" c2 "the update from client2 is there"

# offboard
rows=$(sums c2)
run_repctl offboard client2
is "$RC" 0 "offboard client2 (stderr: ${ERR:0:400})"
like "$OUT" "syncs removed: none" "the multi-source sync stays"
like "$OUT" "left the multi-source sync\\(s\\): archive" "client2 left it"
is "$(msql "SELECT string_agg(node, ' ' ORDER BY ord) FROM repctl.sync_node WHERE sync = 'archive'")" \
	"cavaforgepad jukebox" "archive is the mesh of two again"
is "$(msql "SELECT count(*) FROM repctl.position WHERE source = 'client2' OR target = 'client2'")" 0 \
	"client2's positions are gone"
is "$(sums c2)" "$rows" "client2's rows stay"
is "$(q c2 "SELECT count(*) FROM pg_namespace WHERE nspname = 'repctl'") $(q c2 "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'repctl%'")" \
	"0 0" "no capture left on client2"
q cava "INSERT INTO songs (id, title) VALUES (3001, 'after')"
ok converge
is "$(q juke "SELECT count(*) FROM songs WHERE id = 3001") $(q c2 "SELECT count(*) FROM songs WHERE id = 3001")" \
	"1 0" "the mesh goes on without client2"
done_testing
