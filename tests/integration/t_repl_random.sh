#!/usr/bin/env bash
# tests/integration/t_repl_random.sh - convergence under random concurrent
# inserts, updates and deletes on every node, for the three layouts of the
# design:
#   (a) pair:  two one-way syncs pa <-> pb
#   (b) star:  pairs through a hub, sa <-> sb and sa <-> sc (a change on sb
#              reaches sc only through sa)
#   (c) mesh:  one multi-source sync ma:source,mb:source,mc:source
# Each layout has its own databases on the same three clusters a, b, c.
#
# Per layout, ROUNDS rounds: every node runs STMTS random statements at the
# same time (single-row and multi-row inserts, upserts, updates with and
# without touching updated_at, deletes, primary-key changes, small
# transactions, a rare TRUNCATE; keys in a small range so that conflicts
# happen), while every sync runs once in the middle of it.  Then the syncs
# run until a whole round reports I/U/D 0/0/0 and no conflict everywhere
# (bounded), and every node's ordered checksums must be equal; one more
# round must leave the shadow tables as they are (no echo).
#
# The seed is printed; REPL_SEED=N reproduces a run.  ROUNDS / STMTS can be
# raised for a soak (REPL_ROUNDS_N, REPL_STMTS).
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

ROUNDS=${REPL_ROUNDS_N:-3}
STMTS=${REPL_STMTS:-200}
repl_seed
note "rounds: $ROUNDS, statements per node per round: $STMTS"

# shellcheck disable=SC2119 # no node yet: the layouts add their own
repl_setup

repl_add_node pa a pair hp
repl_add_node pb b pair hp
repl_add_node sa a star hs
repl_add_node sb b star hs
repl_add_node sc c star hs
repl_add_node ma a mesh hm
repl_add_node mb b mesh hm
repl_add_node mc c mesh hm

add_sync() {
	run_repctl add sync "$@"
	is "$RC" 0 "add sync $1"
	[[ $RC == 0 ]] || diag "$ERR"
}
add_sync p_ab relgroup=hp dbs=pa:source,pb:target conflict_strategy=bucardo_latest
add_sync p_ba relgroup=hp dbs=pb:source,pa:target conflict_strategy=bucardo_latest
add_sync s_ab relgroup=hs dbs=sa:source,sb:target conflict_strategy=latest
add_sync s_ba relgroup=hs dbs=sb:source,sa:target conflict_strategy=latest
add_sync s_ac relgroup=hs dbs=sa:source,sc:target conflict_strategy=latest
add_sync s_ca relgroup=hs dbs=sc:source,sa:target conflict_strategy=latest
add_sync m relgroup=hm dbs=ma:source,mb:source,mc:source conflict_strategy=latest

# ---- the random statement generator (runs in this shell: RANDOM advances) ------------
R=0
r() { R=$((RANDOM % $1)); }

# one_stmt NODE : print one random statement
one_stmt() {
	local n=$1 p k k2 v pl pos
	r 100
	p=$R
	r 40
	k=$((R + 1))
	r 40
	k2=$((R + 1))
	r 100000
	v=$R
	r 3
	pl=$((R + 1))
	r 5
	pos=$((R + 1))
	if ((p < 15)); then
		echo "INSERT INTO songs (id, title, plays, updated_at) VALUES ($k, '$n''s song $v', $v % 97, clock_timestamp()) ON CONFLICT (id) DO UPDATE SET title = EXCLUDED.title, plays = EXCLUDED.plays, updated_at = EXCLUDED.updated_at;"
	elif ((p < 30)); then
		echo "UPDATE songs SET plays = plays + 1, title = '$n upd $v', updated_at = clock_timestamp() WHERE id = $k;"
	elif ((p < 35)); then
		# Rails update_all: updated_at untouched
		echo "UPDATE songs SET title = '$n update_all $v' WHERE id = $k;"
	elif ((p < 42)); then
		echo "UPDATE songs SET plays = (plays * 7 + $v) % 1000, updated_at = clock_timestamp() WHERE id BETWEEN $k AND $((k + 5));"
	elif ((p < 52)); then
		echo "DELETE FROM songs WHERE id = $k;"
	elif ((p < 55)); then
		echo "DELETE FROM songs WHERE id BETWEEN $k AND $((k + 2));"
	elif ((p < 62)); then
		echo "INSERT INTO songs (id, title, updated_at) SELECT g, '$n multi ' || g || ' $v', clock_timestamp() FROM generate_series($k, $((k + 3))) g ON CONFLICT (id) DO UPDATE SET title = EXCLUDED.title, updated_at = EXCLUDED.updated_at;"
	elif ((p < 65)); then
		echo "UPDATE songs SET id = $((k2 + 100)), updated_at = clock_timestamp() WHERE id = $k AND NOT EXISTS (SELECT 1 FROM songs WHERE id = $((k2 + 100)));"
	elif ((p < 72)); then
		# a literal backslash-t in the value (E'\\t' in SQL)
		# shellcheck disable=SC2028
		echo "INSERT INTO tags (id, name) VALUES ($((k % 20 + 1)), E'$n tag\\\\t$v') ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name;"
	elif ((p < 77)); then
		echo "DELETE FROM tags WHERE id = $((k % 20 + 1));"
	elif ((p < 80)); then
		echo "UPDATE tags SET name = name || '+' WHERE id % 3 = $((v % 3));"
	elif ((p < 87)); then
		echo "INSERT INTO playlist_items (playlist_id, position, song_id, updated_at) VALUES ($pl, $pos, $v, clock_timestamp()) ON CONFLICT (playlist_id, position) DO UPDATE SET song_id = EXCLUDED.song_id, updated_at = EXCLUDED.updated_at;"
	elif ((p < 91)); then
		echo "DELETE FROM playlist_items WHERE playlist_id = $pl AND position >= $pos;"
	elif ((p < 93)); then
		echo "UPDATE playlist_items SET position = $((pos + 5)), updated_at = clock_timestamp() WHERE playlist_id = $pl AND position = $pos AND NOT EXISTS (SELECT 1 FROM playlist_items WHERE playlist_id = $pl AND position = $((pos + 5)));"
	elif ((p < 97)); then
		echo "INSERT INTO \"Weird \"\"name\"\"\" (a, b, \"B c\", updated_at) VALUES ($((k % 5)), '$([[ $((v % 2)) == 0 ]] && echo x || echo "y''s")', '$n \"$v\"', clock_timestamp()) ON CONFLICT (a, b) DO UPDATE SET \"B c\" = EXCLUDED.\"B c\", updated_at = EXCLUDED.updated_at;"
	else
		echo "DELETE FROM \"Weird \"\"name\"\"\" WHERE a = $((k % 5));"
	fi
}

# gen_dml NODE N : N statements, some grouped in small transactions
gen_dml() {
	local n=$1 i j
	for ((i = 0; i < $2; i++)); do
		r 200
		if ((R == 0)); then
			echo "TRUNCATE tags;"
		elif ((R < 20)); then
			echo "BEGIN;"
			for ((j = 0; j < 3; j++)); do
				one_stmt "$n"
			done
			echo "COMMIT;"
			i=$((i + 2))
		else
			one_stmt "$n"
		fi
	done
}

# layout NAME "NODES" "SYNCS"
layout() {
	local name=$1 nodes syncs round n s pids pid errs
	read -r -a nodes <<<"$2"
	read -r -a syncs <<<"$3"
	note "==== layout $name: nodes ${nodes[*]}, syncs ${syncs[*]}"
	for ((round = 1; round <= ROUNDS; round++)); do
		pids=()
		for n in "${nodes[@]}"; do
			gen_dml "$n" "$STMTS" >"$TEST_TMP/dml.$name.$n.$round.sql"
		done
		for n in "${nodes[@]}"; do
			repl_psql "$n" -v ON_ERROR_STOP=0 -f "$TEST_TMP/dml.$name.$n.$round.sql" \
				>"$TEST_TMP/dml.$name.$n.$round.log" 2>&1 &
			pids+=($!)
		done
		# every sync once while the statements run (failures, e.g. a
		# deadlock with a local writer, are retried by the next run)
		for s in "${syncs[@]}"; do
			repl_run "$s"
		done
		for pid in "${pids[@]}"; do
			wait "$pid" || true
		done
		for n in "${nodes[@]}"; do
			errs=$(grep -c 'ERROR' "$TEST_TMP/dml.$name.$n.$round.log" || true)
			note "$name round $round: $n: $errs statement(s) failed (key races, deadlocks)"
		done
	done
	if repl_converge 10 "${syncs[@]}"; then
		pass "$name: quiescent after $REPL_ROUNDS round(s) of runs"
	else
		fail "$name: quiescent within 10 rounds of runs"
	fi
	repl_same "$name: converged" "${nodes[@]}"
	note "$name: rows per table on ${nodes[0]}: $(repl_sums "${nodes[0]}" | cut -d'|' -f1,2 | tr '\n' ' ')"
	ok test "$(repl_val "${nodes[0]}" 'SELECT count(*) FROM songs')" -gt 0
	local in_syncs
	in_syncs=$(printf "'%s'," "${syncs[@]}")
	note "$name: conflicts logged: $(pg_sql meta postgres "SELECT count(*) || ' (' ||
	        count(*) FILTER (WHERE local_row = remote_row) || ' between identical rows, ' ||
	        count(*) FILTER (WHERE local_row IS NULL AND remote_row IS NULL) ||
	        ' delete/delete)' FROM repctl.conflict WHERE sync IN (${in_syncs%,})")"
	# no echo: one more round changes no shadow row anywhere
	local before='' after=''
	for n in "${nodes[@]}"; do
		before+="$(repl_shadow_sums "$n")"$'\n'
	done
	for s in "${syncs[@]}"; do
		repl_run "$s"
		is "$RUN_RC/$RUN_I/$RUN_U/$RUN_D/$RUN_C" 0/0/0/0/0 "$name: after convergence $s writes nothing"
	done
	for n in "${nodes[@]}"; do
		after+="$(repl_shadow_sums "$n")"$'\n'
	done
	is "$after" "$before" "$name: shadow tables unchanged by a further round (no echo)"
}

layout pair "pa pb" "p_ab p_ba"
layout star "sa sb sc" "s_ab s_ba s_ac s_ca"
layout mesh "ma mb mc" "m"

# the hub really relays: a change on sb reaches sc
repl_sql sb "INSERT INTO songs (id, title) VALUES (9999, 'via the hub')"
for s in s_ab s_ba s_ac s_ca; do
	repl_run "$s"
done
is "$(repl_val sc 'SELECT title FROM songs WHERE id = 9999')" 'via the hub' "star: a change on sb reaches sc through sa"

done_testing
