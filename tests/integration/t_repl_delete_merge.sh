#!/usr/bin/env bash
# tests/integration/t_repl_delete_merge.sh - a delete merged with another
# node's concurrent delete is not lost to a later edit that saw only the
# other delete (the randomized property test's 1-in-25 "lost write": the
# last write, a delete, undone by an older re-insert).
#
# Two concurrent deletes of one key are not a conflict to decide (same
# outcome): the target merges the two version vectors.  The merged version
# still carries one name (dot: a node and its counter), against which a
# later version is judged ("newer" when it has seen that name).  It must be
# the version the strategy keeps: named after the incoming delete whatever
# it was, a node's own later delete was folded into the relayed earlier one,
# and a re-insert made after the earlier delete (but before, and without
# seeing, the later one) was then taken for newer and applied everywhere.
#
# Proves, under latest, with every run a plain `repctl run` (deterministic,
# no concurrency needed):
#  - chain a <-> b <-> c: c deletes key 1 (earlier), the delete reaches b;
#    c re-inserts key 1; a deletes key 1 (the last write); b -> a brings c's
#    delete to a, where it meets a's own delete; c's re-insert then reaches
#    a through b: it is decided as a conflict against a's delete (logged,
#    a wins) and key 1 ends deleted on every node;
#  - the same through a relay (nodes a, b, c, d; c -> d -> b is a second
#    path): c deletes key 2 and that reaches d only; c re-inserts key 2; a
#    deletes key 2 (the last write) and that reaches b; then d -> b brings
#    c's older delete to b, where the two deletes merge; c's re-insert then
#    reaches b: a conflict against a's delete, which wins; key 2 ends
#    deleted on every node;
#  - under first, the mirror: the earlier delete is kept; a re-insert made
#    after it on its own node wins over the later delete (key 3);
#  - afterwards every node is identical, a further round writes nothing and
#    leaves the shadow tables unchanged (no echo).
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

repl_setup a b c
# d shares c's cluster, in its own database
repl_add_node d c archive_d

SYNCS=(ab ba bc cb cd dc bd db)
add_sync() { # NAME SRC TGT
	run_repctl add sync "$1" herd="$REPL_HERD" dbs="$2:source,$3:target" conflict_strategy=latest
	is "$RC" 0 "add sync $1 ($2 -> $3)"
}
for s in "${SYNCS[@]}"; do
	add_sync "$s" "${s:0:1}" "${s:1:1}"
done

meta() { pg_sql meta postgres "$1"; }

# run SYNC... : each once, asserted good
run() {
	local s
	for s in "$@"; do
		repl_run "$s"
		is "$RUN_RC" 0 "run $s is good"
	done
}

# song NODE ID : its title, or "gone"
song() { repl_val "$1" "SELECT coalesce((SELECT title FROM songs WHERE id = $2), 'gone')"; }

# strategy S : on every sync
strategy() {
	local s
	for s in "${SYNCS[@]}"; do
		run_repctl update sync "$s" conflict_strategy="$1"
		is "$RC" 0 "update sync $s conflict_strategy=$1"
	done
}

# ---- a converged start: songs 1..3 everywhere ----------------------------------------------
repl_sql a "INSERT INTO songs (id, title, updated_at) SELECT g, 'v0', '2024-01-01+00' FROM generate_series(1, 3) g"
ok repl_converge 5 "${SYNCS[@]}"
repl_same "converged start" a b c d

# ---- 1: the merge on the node that made the later delete -------------------------------------
repl_sql c "DELETE FROM songs WHERE id = 1"
run cb # b: c's delete
repl_sql c "INSERT INTO songs (id, title, updated_at) VALUES (1, 'c again', clock_timestamp())"
repl_sql a "DELETE FROM songs WHERE id = 1" # the last write
run ba # a: c's delete meets a's own
run cb # b: c's re-insert
run ba # a: c's re-insert, which never saw a's delete
like "$RUN_ERR" 'conflict on "public"."songs" key \{"id": 1\}.*winner a' \
	"1: c's re-insert against a's later delete is a conflict, a's delete wins"
is "$(song a 1)" gone "1: a's delete stays on a"
ok repl_converge 6 "${SYNCS[@]}"
for n in a b c d; do
	is "$(song "$n" 1)" gone "1: key 1 deleted on $n (a's delete was the last write)"
done

# ---- 2: the merge on a relay -------------------------------------------------------------------
repl_sql c "DELETE FROM songs WHERE id = 2"
run cd # d: c's delete (b does not have it)
repl_sql c "INSERT INTO songs (id, title, updated_at) VALUES (2, 'c again', clock_timestamp())"
repl_sql a "DELETE FROM songs WHERE id = 2" # the last write
run ab # b: a's delete
run db # b: c's older delete, through d: the two deletes merge on b
run cb # b: c's re-insert, which never saw a's delete
like "$RUN_ERR" 'conflict on "public"."songs" key \{"id": 2\}.*winner a' \
	"2: c's re-insert against a's later delete (merged on b) is a conflict, a's delete wins"
is "$(song b 2)" gone "2: a's delete stays on b"
ok repl_converge 6 "${SYNCS[@]}"
for n in a b c d; do
	is "$(song "$n" 2)" gone "2: key 2 deleted on $n (a's delete was the last write)"
done

# ---- 3: first keeps the earlier delete: a re-insert after it wins --------------------------
strategy first
repl_sql c "DELETE FROM songs WHERE id = 3"
run cb
repl_sql c "INSERT INTO songs (id, title, updated_at) VALUES (3, 'c again', clock_timestamp())"
repl_sql a "DELETE FROM songs WHERE id = 3"
run ba # a: a's later delete merged with c's earlier one, kept as c's
run cb
run ba # c's re-insert follows the delete it saw: applied on a
is "$(song a 3)" 'c again' "3 (first): c's re-insert, made after the kept delete, is on a"
ok repl_converge 6 "${SYNCS[@]}"
for n in a b c d; do
	is "$(song "$n" 3)" 'c again' "3 (first): c's re-insert on $n"
done

# ---- no echo --------------------------------------------------------------------------------
repl_same "all identical" a b c d
before=''
for n in a b c d; do
	before+="$(repl_shadow_sums "$n")"$'\n'
done
bad=''
for s in "${SYNCS[@]}"; do
	repl_run "$s"
	[[ "$RUN_RC/$RUN_I/$RUN_U/$RUN_D/$RUN_C" == 0/0/0/0/0 ]] || bad+="$s: $RUN_OUT $RUN_ERR"$'\n'
done
is "$bad" '' "a further round writes nothing"
after=''
for n in a b c d; do
	after+="$(repl_shadow_sums "$n")"$'\n'
done
is "$after" "$before" "the shadow tables are unchanged by a further round (no echo)"
note "conflicts logged: $(meta "SELECT count(*) FROM repctl.conflict")"

done_testing
