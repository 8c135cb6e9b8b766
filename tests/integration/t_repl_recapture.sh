#!/usr/bin/env bash
# tests/integration/t_repl_recapture.sh - removing a table's capture on a
# node and adding it again must not make that node's later edits look like
# old news: a re-captured node never reuses a version-vector counter.
#
# On a pair of one-way syncs ab (a -> b) and ba (b -> a):
#  - a history gives songs 1 and 2 the vector {"a": x, "b": y} with y from
#    two edits on b (edit on a, sync, edit twice on b, sync), on both nodes;
#  - `repctl remove table public.songs --db=b` drops b's capture (and its
#    version store); `repctl add table public.songs --herd=h --db=b`
#    installs it again, empty;
#  - latest: song 1 edited on b (newer updated_at); ba/ab until quiet: b's
#    edit reaches a (it is not skipped as dominated by a's stored vector),
#    and the nodes are equal;
#  - first: song 2 edited on b; ba/ab until quiet: the nodes converge, and
#    either b's edit is on both nodes or a conflict for song 2 is logged
#    (never silently dropped);
#  - the next edit on b after that travels as usual;
#  - the heavier path: syncs removed, `repctl remove database b` (capture
#    dropped with the node), b added back with its tables and the syncs
#    re-created; b edits song 3 (newer updated_at); ab then ba until quiet:
#    b's edit is on both nodes (a's whole version store, news for the new
#    edge ab, does not overwrite it);
#  - a further round writes nothing.
# shellcheck disable=SC2317 # helpers are called through wait_until / ok
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

repl_setup a b
run_repctl add sync ab relgroup=h dbs=a:source,b:target conflict_strategy=latest
is "$RC" 0 "add sync ab"
run_repctl add sync ba relgroup=h dbs=b:source,a:target conflict_strategy=latest
is "$RC" 0 "add sync ba"

meta() { pg_sql meta postgres "$1"; }

strategy() {
	run_repctl update sync ab conflict_strategy="$1"
	is "$RC" 0 "update sync ab conflict_strategy=$1"
	run_repctl update sync ba conflict_strategy="$1"
	is "$RC" 0 "update sync ba conflict_strategy=$1"
}

# song NODE ID : title of song ID, or "(none)"
song() {
	repl_val "$1" "SELECT coalesce((SELECT title FROM songs WHERE id = $2), '(none)')"
}

# vv NODE ID : the shadow vector of song ID on NODE, "(none)" without one
vv() {
	local sh
	sh=$(repl_val "$1" "SELECT shadow FROM repctl.captured WHERE schema_name = 'public' AND table_name = 'songs'")
	if [[ -z $sh ]]; then
		echo '(no capture)'
		return 0
	fi
	repl_val "$1" "SELECT coalesce((SELECT repctl_vv::text FROM repctl.\"$sh\" WHERE id = $2), '(none)')"
}

# counter NODE ID WHO : WHO's counter in the vector of song ID on NODE (0 if none)
counter() {
	local sh
	sh=$(repl_val "$1" "SELECT shadow FROM repctl.captured WHERE schema_name = 'public' AND table_name = 'songs'")
	repl_val "$1" "SELECT coalesce((SELECT (repctl_vv ->> '$3')::numeric FROM repctl.\"$sh\" WHERE id = $2), 0)"
}

# greater GOT THAN MSG : GOT > THAN (integers)
greater() {
	if [[ $1 =~ ^[0-9]+$ && $2 =~ ^[0-9]+$ ]] && (($1 > $2)); then
		_t_result 1 "$3" "$(_t_where 1)"
	else
		_t_result 0 "$3" "$(_t_where 1)" "     got: '$1'"$'\n'"expected: > '$2'"
	fi
}

# conflicts ID : number of conflicts logged for song ID
conflicts() {
	meta "SELECT count(*) FROM repctl.conflict WHERE table_name = 'songs' AND (pk->>'id')::bigint = $1"
}

# converge MSG : ba and ab until quiet; 0 when quiet
converge() {
	if repl_converge 6 ba ab; then
		pass "$1: ba/ab quiescent (after $REPL_ROUNDS round(s))"
	else
		fail "$1: ba/ab quiescent within 6 rounds"
	fi
}

# ---- history: {"a": x, "b": y}, y from two edits on b --------------------------------------
pg_sql a "$REPL_DB" "INSERT INTO songs (id, title, updated_at)
                     SELECT g, 'orig ' || g, '2024-01-01 00:00:00+00' FROM generate_series(1, 10) g"
converge "initial copy"
pg_sql a "$REPL_DB" "UPDATE songs SET title = 'A edit ' || id, updated_at = '2024-02-01 00:00:00+00' WHERE id IN (1, 2)"
converge "edit on a"
pg_sql b "$REPL_DB" "UPDATE songs SET title = 'B edit 1 of ' || id, updated_at = '2024-03-01 00:00:00+00' WHERE id IN (1, 2)"
pg_sql b "$REPL_DB" "UPDATE songs SET title = 'B edit 2 of ' || id, updated_at = '2024-03-02 00:00:00+00' WHERE id IN (1, 2)"
converge "two edits on b"
repl_same "history" a b
is "$(song a 1)" 'B edit 2 of 1' "history: b's second edit of song 1 reached a"
for id in 1 2; do
	note "song $id: vector on a $(vv a "$id"), on b $(vv b "$id")"
	greater "$(counter a "$id" a)" 0 "history: song $id has a counter of a"
	greater "$(counter a "$id" b)" 0 "history: song $id has a counter of b"
	is "$(vv a "$id")" "$(vv b "$id")" "history: song $id has the same vector on both nodes"
done
before_b1=$(counter a 1 b)

# ---- remove b's capture of songs and add it again ---------------------------------------
run_repctl remove table public.songs --db=b
is "$RC" 0 "remove table public.songs --db=b"
[[ $RC == 0 ]] || diag "remove table: $ERR"
is "$(vv b 1)" '(no capture)' "b's capture of songs is gone"
run_repctl add table public.songs --herd=h --db=b
is "$RC" 0 "add table public.songs --herd=h --db=b"
[[ $RC == 0 ]] || diag "add table: $ERR"
is "$(vv b 1)" '(none)' "b's capture is back, with an empty version store"
repl_same "after re-capture, nothing changed yet" a b

# ---- latest: b's next edit reaches a -------------------------------------------------------
pg_sql b "$REPL_DB" "UPDATE songs SET title = 'B after recapture', updated_at = '2024-04-01 00:00:00+00' WHERE id = 1"
note "song 1 after b's edit: vector on b $(vv b 1), on a $(vv a 1)"
converge "latest: edit on b after re-capture"
is "$(song a 1)" 'B after recapture' "latest: b's edit after the re-capture reached a (not taken for old news)"
is "$(song b 1)" 'B after recapture' "latest: b keeps its edit"
repl_same "latest: after re-capture" a b
greater "$(counter a 1 b)" "$before_b1" "latest: b's counter for song 1 on a went past its pre-re-capture value"
note "song 1: vector on a $(vv a 1), on b $(vv b 1) (b's counter was $before_b1)"

# ---- first: converge, and never drop b's edit silently ---------------------------------------
strategy first
nconf=$(conflicts 2)
pg_sql b "$REPL_DB" "UPDATE songs SET title = 'B first after recapture', updated_at = '2024-04-01 00:00:00+00' WHERE id = 2"
converge "first: edit on b after re-capture"
repl_same "first: after re-capture" a b
t2a=$(song a 2)
logged=$(($(conflicts 2) - nconf))
note "first: song 2 is '$t2a' on a, '$(song b 2)' on b; $logged conflict(s) logged for it"
if [[ $t2a == 'B first after recapture' ]] || ((logged > 0)); then
	pass "first: b's edit is on both nodes or its conflict is logged (not silently dropped)"
else
	fail "first: b's edit is on both nodes or its conflict is logged (not silently dropped)" \
		"song 2 on a: '$t2a', on b: '$(song b 2)'; conflicts logged for it: $logged"
fi
is "$(song b 2)" "$t2a" "first: song 2 is the same on both nodes"

# ---- afterwards: edits on b travel as usual ----------------------------------------------
strategy latest
pg_sql b "$REPL_DB" "UPDATE songs SET title = 'B later', updated_at = '2024-05-01 00:00:00+00' WHERE id IN (1, 2, 3)"
converge "later edits on b"
is "$(repl_val a "SELECT string_agg(id || '=' || title, ',' ORDER BY id) FROM songs WHERE id IN (1, 2, 3)")" \
	'1=B later,2=B later,3=B later' "later edits on b reached a"
repl_same "later edits" a b

# ---- the node itself removed and added back (syncs re-created) ------------------------------
note "song 3 before b leaves: vector on a $(vv a 3), on b $(vv b 3)"
before_b3=$(counter a 3 b)
for s in ab ba; do
	run_repctl remove sync "$s"
	is "$RC" 0 "remove sync $s"
done
run_repctl remove database b
is "$RC" 0 "remove database b"
[[ $RC == 0 ]] || diag "remove database b: $ERR"
is "$(vv b 3)" '(no capture)' "b's capture is gone with the node"
run_repctl add database b conn="$(pg_conninfo b "$REPL_DB")"
is "$RC" 0 "add database b again"
run_repctl add all tables --herd=h --db=b
is "$RC" 0 "add all tables --herd=h --db=b again"
run_repctl add sync ab relgroup=h dbs=a:source,b:target conflict_strategy=latest
is "$RC" 0 "add sync ab again"
run_repctl add sync ba relgroup=h dbs=b:source,a:target conflict_strategy=latest
is "$RC" 0 "add sync ba again"
pg_sql b "$REPL_DB" "UPDATE songs SET title = 'B after rejoin', updated_at = '2024-06-01 00:00:00+00' WHERE id = 3"
# ab first: a's whole version store is news for the new edge
if repl_converge 6 ab ba; then
	pass "rejoin: ab/ba quiescent (after $REPL_ROUNDS round(s))"
else
	fail "rejoin: ab/ba quiescent within 6 rounds"
fi
is "$(song b 3)" 'B after rejoin' "rejoin: b's edit is not overwritten by a's older version"
is "$(song a 3)" 'B after rejoin' "rejoin: b's edit reached a"
greater "$(counter a 3 b)" "$before_b3" "rejoin: b's counter for song 3 on a went past its value before b left"
repl_same "at the end" a b
repl_run ab
is "$RUN_RC/$RUN_I/$RUN_U/$RUN_D/$RUN_C" 0/0/0/0/0 "a further run of ab writes nothing"
repl_run ba
is "$RUN_RC/$RUN_I/$RUN_U/$RUN_D/$RUN_C" 0/0/0/0/0 "a further run of ba writes nothing"

done_testing
