#!/usr/bin/env bash
# tests/integration/t_repl_conflicts.sh - every conflict strategy, exactly,
# on a pair of one-way syncs (ab: a -> b, ba: b -> a) run with `repctl run`.
#
# A true conflict is made by changing the same converged row on both nodes
# before either sync runs.  Proves:
#  - latest: per row, not per table: in one batch half the rows are newer on
#    a and half newer on b, and each row ends with its own newer version on
#    both nodes; each decision is logged with the winner;
#  - first: the same rows, the opposite winners;
#  - source: a version's origin is ranked by its smallest dbs= position over
#    the herd's syncs; in the pair both a and b are first in their own sync,
#    so the smaller name (a) wins, the same on both edges; a multi-source
#    sync added to the same herd does not change that (the ranks are the
#    herd's, so every sync decides alike); see t_repl_source_mesh.sh for the
#    dbs= order of a single sync;
#  - target: the mirror (equal ranks: the greater name, b), and that version
#    then reaches the other node;
#  - skip: nothing applied (each node keeps its version), logged with winner
#    "none"; a later conflict under latest resolves it;
#  - abort: the run exits non-zero naming the table and the key, and nothing
#    of the batch is applied on the target (checksums unchanged), not even
#    the rows that were not in conflict or in another table; the run's
#    I/U/D (output and history) say nothing was written; nothing is logged
#    as resolved;
#  - a sequential update always wins: updated on a, synced, then updated on b
#    wins with conflict_strategy=first even though its updated_at is later,
#    and wins under latest even though its updated_at is older; no conflict
#    is logged for it;
#  - update against delete under latest, both ways: the delete's change time
#    competes with the update's updated_at (old update loses, update dated
#    in the future-but-trusted range wins), on either node;
#  - equal updated_at (Rails' update_all): the later change time wins, per
#    row (so not a node-name rule); a table without updated_at likewise;
#  - `repctl conflicts` lists the decisions; `repctl conflicts --json` holds
#    both versions of the row as JSON objects.
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
run_repctl add sync ab relgroup=h dbs=a:source,b:target conflict_strategy=bucardo_latest
is "$RC" 0 "add sync ab"
run_repctl add sync ba relgroup=h dbs=b:source,a:target conflict_strategy=bucardo_latest
is "$RC" 0 "add sync ba"

meta() { pg_sql meta postgres "$1"; }

# strategy S : set it on both syncs
strategy() {
	run_repctl update sync ab conflict_strategy="$1"
	is "$RC" 0 "update sync ab conflict_strategy=$1"
	run_repctl update sync ba conflict_strategy="$1"
	is "$RC" 0 "update sync ba conflict_strategy=$1"
}

# both MSG : run ab then ba, both good
both() {
	repl_run ab
	is "$RUN_RC" 0 "$1: run ab is good"
	repl_run ba
	is "$RUN_RC" 0 "$1: run ba is good"
}

# titles NODE FROM TO : "id=title,..." of songs FROM..TO, or with deleted rows missing
titles() {
	repl_val "$1" "SELECT coalesce(string_agg(id || '=' || title, ',' ORDER BY id), '') FROM songs WHERE id BETWEEN $2 AND $3"
}

# winners SYNC FROM TO : "id:winner,..." of the logged conflicts on songs
winners() {
	meta "SELECT coalesce(string_agg((pk->>'id') || ':' || winner, ',' ORDER BY (pk->>'id')::int, id), '')
	        FROM repctl.conflict WHERE sync = '$1' AND table_name = 'songs'
	         AND (pk->>'id')::int BETWEEN $2 AND $3"
}

# ---- converged start: songs 1..60, tags 1..5 ------------------------------------------
pg_sql a "$REPL_DB" "INSERT INTO songs (id, title, updated_at) SELECT g, 'orig ' || g, '2024-01-01 00:00:00+00' FROM generate_series(1, 60) g;
                     INSERT INTO tags (id, name) SELECT g, 'tag ' || g FROM generate_series(1, 5) g"
both "initial copy"
repl_same "initial copy" a b
is "$(meta 'SELECT count(*) FROM repctl.conflict')" 0 "no conflict logged for the initial copy"

# ---- latest: per row --------------------------------------------------------------------
# ids 1..10: odd ids newer on a, even ids newer on b
pg_sql a "$REPL_DB" "UPDATE songs SET title = 'A' || id, updated_at = CASE WHEN id % 2 = 1 THEN '2024-06-02+00'::timestamptz ELSE '2024-06-01+00' END WHERE id BETWEEN 1 AND 10"
pg_sql b "$REPL_DB" "UPDATE songs SET title = 'B' || id, updated_at = CASE WHEN id % 2 = 1 THEN '2024-06-01+00'::timestamptz ELSE '2024-06-02+00' END WHERE id BETWEEN 1 AND 10"
both "latest"
want='1=A1,2=B2,3=A3,4=B4,5=A5,6=B6,7=A7,8=B8,9=A9,10=B10'
is "$(titles a 1 10)" "$want" "latest: each row's newer version on a (winner per row)"
is "$(titles b 1 10)" "$want" "latest: each row's newer version on b"
is "$(winners ab 1 10)" '1:a,2:b,3:a,4:b,5:a,6:b,7:a,8:b,9:a,10:b' "latest: 10 decisions logged, one per row"
is "$(winners ba 1 10)" '' "latest: no second conflict when the winner travels back"
repl_same "latest" a b
like "$(meta "SELECT rule FROM repctl.conflict WHERE sync = 'ab' AND pk = '{\"id\": 1}'")" \
	'latest' "latest: the rule is logged"

# ---- first: same shape, opposite winners --------------------------------------------------
strategy bucardo_first
pg_sql a "$REPL_DB" "UPDATE songs SET title = 'A' || id, updated_at = CASE WHEN id % 2 = 1 THEN '2024-06-02+00'::timestamptz ELSE '2024-06-01+00' END WHERE id BETWEEN 11 AND 20"
pg_sql b "$REPL_DB" "UPDATE songs SET title = 'B' || id, updated_at = CASE WHEN id % 2 = 1 THEN '2024-06-01+00'::timestamptz ELSE '2024-06-02+00' END WHERE id BETWEEN 11 AND 20"
both "first"
want='11=B11,12=A12,13=B13,14=A14,15=B15,16=A16,17=B17,18=A18,19=B19,20=A20'
is "$(titles a 11 20)" "$want" "first: each row's older version on a"
is "$(titles b 11 20)" "$want" "first: each row's older version on b"
is "$(winners ab 11 20)" '11:b,12:a,13:b,14:a,15:b,16:a,17:b,18:a,19:b,20:a' "first: decisions logged"
repl_same "first" a b

# ---- source (pair): equal ranks (both first in their own sync): the smaller name ----------
strategy source
# b's versions are newer: source must not care
pg_sql a "$REPL_DB" "UPDATE songs SET title = 'A' || id, updated_at = '2024-06-01+00' WHERE id IN (21, 22)"
pg_sql b "$REPL_DB" "UPDATE songs SET title = 'B' || id, updated_at = '2024-06-05+00' WHERE id IN (21, 22)"
both "source"
is "$(titles a 21 22)" '21=A21,22=A22' "source: ab's source a wins (on a)"
is "$(titles b 21 22)" '21=A21,22=A22' "source: ab's source a wins (on b)"
is "$(winners ab 21 22)" '21:a,22:a' "source: logged with winner a"

# ---- target: equal ranks: the greater name (b, ab's target) keeps its version ------------
strategy target
pg_sql a "$REPL_DB" "UPDATE songs SET title = 'A' || id, updated_at = '2024-06-05+00' WHERE id IN (23, 24)"
pg_sql b "$REPL_DB" "UPDATE songs SET title = 'B' || id, updated_at = '2024-06-01+00' WHERE id IN (23, 24)"
repl_run ab
is "$RUN_RC/$RUN_C" 0/2 "target: ab good with 2 conflicts"
is "$(titles b 23 24)" '23=B23,24=B24' "target: b (ab's target) kept its versions"
is "$(titles a 23 24)" '23=A23,24=A24' "target: a not changed by ab"
repl_run ba
is "$RUN_RC/$RUN_C" 0/0 "target: ba good, the kept version is no conflict for a"
is "$(titles a 23 24)" '23=B23,24=B24' "target: the kept versions reached a"
is "$(winners ab 23 24)" '23:b,24:b' "target: logged with winner b"
repl_same "target" a b

# ---- skip: nothing applied, logged ---------------------------------------------------------
strategy skip
pg_sql a "$REPL_DB" "UPDATE songs SET title = 'A' || id, updated_at = '2024-06-05+00' WHERE id IN (25, 26)"
pg_sql b "$REPL_DB" "UPDATE songs SET title = 'B' || id, updated_at = '2024-06-01+00' WHERE id IN (25, 26)"
both "skip"
is "$(titles a 25 26)" '25=A25,26=A26' "skip: a keeps its versions"
is "$(titles b 25 26)" '25=B25,26=B26' "skip: b keeps its versions"
is "$(winners ab 25 26)" '25:none,26:none' "skip: ab logged both, winner none"
is "$(winners ba 25 26)" '25:none,26:none' "skip: ba logged both, winner none"
both "skip, again"
is "$(meta "SELECT count(*) FROM repctl.conflict WHERE (pk->>'id')::int IN (25, 26)")" 4 \
	"skip: a later run does not log the same conflict again"
# resolve it: latest, and a newer change on b
strategy latest
pg_sql b "$REPL_DB" "UPDATE songs SET title = 'B2' || id, updated_at = '2024-07-01+00' WHERE id IN (25, 26)"
both "skip resolved"
is "$(titles a 25 26)" '25=B225,26=B226' "skipped rows resolved later (a)"
is "$(titles b 25 26)" '25=B225,26=B226' "skipped rows resolved later (b)"
repl_same "after skip" a b

# ---- abort: the run stops, nothing applied ----------------------------------------------
strategy abort
pg_sql a "$REPL_DB" "UPDATE songs SET title = 'A27', updated_at = '2024-06-05+00' WHERE id = 27;
                     UPDATE songs SET title = 'A28 no conflict', updated_at = '2024-06-05+00' WHERE id = 28;
                     INSERT INTO songs (id, title) VALUES (1000, 'new on a');
                     INSERT INTO albums (id, name) VALUES ('33333333-3333-3333-3333-333333333333', 'applied before the abort')"
pg_sql b "$REPL_DB" "UPDATE songs SET title = 'B27', updated_at = '2024-06-01+00' WHERE id = 27"
sums_b=$(repl_sums b)
shadow_b=$(repl_shadow_sums b)
nconf=$(meta 'SELECT count(*) FROM repctl.conflict')
repl_run ab
ok test "$RUN_RC" -ne 0
like "$RUN_ERR" 'songs' "abort: the message names the table"
like "$RUN_ERR" '"id": 27' "abort: the message names the key"
like "$RUN_ERR" "'a'.*'b'|'b'.*'a'" "abort: the message names both nodes"
is "$(repl_sums b)" "$sums_b" "abort: nothing applied on b (checksums unchanged)"
is "$(repl_shadow_sums b)" "$shadow_b" "abort: b's shadow tables unchanged"
is "$(titles b 27 28)" '27=B27,28=orig 28' "abort: not even the rows without a conflict"
is "$(repl_val b "SELECT count(*) FROM albums")" 0 "abort: not even another table of the batch (albums)"
is "$RUN_I/$RUN_U/$RUN_D" 0/0/0 "abort: the failed run reports nothing written (it all rolled back)"
is "$(meta "SELECT inserts || '/' || updates || '/' || deletes FROM repctl.run WHERE sync = 'ab' ORDER BY id DESC LIMIT 1")" \
	0/0/0 "abort: the run history records nothing written"
is "$(meta 'SELECT count(*) FROM repctl.conflict')" "$nconf" "abort: no conflict logged as resolved"
run_repctl status ab
like "$OUT" '^ *health +red' "abort: status shows the sync red"
like "$OUT" 'last_error.*abort' "abort: status shows the error"
strategy latest
both "after abort"
is "$(titles b 27 28)" '27=A27,28=A28 no conflict' "the aborted batch is applied once the strategy allows"
repl_same "after abort" a b

# ---- a sequential update always wins -----------------------------------------------------
strategy first
pg_sql a "$REPL_DB" "UPDATE songs SET title = 'A31', updated_at = '2024-06-01+00' WHERE id = 31"
both "sequential (first)"
is "$(titles b 31 31)" '31=A31' "sequential: a's update reached b"
pg_sql b "$REPL_DB" "UPDATE songs SET title = 'B31 later', updated_at = '2024-06-09+00' WHERE id = 31"
both "sequential (first) 2"
is "$(titles a 31 31)" '31=B31 later' "sequential: b's later update wins on a even with first"
is "$(titles b 31 31)" '31=B31 later' "sequential: ... and stays on b"
strategy latest
pg_sql a "$REPL_DB" "UPDATE songs SET title = 'A32', updated_at = '2024-06-09+00' WHERE id = 32"
both "sequential (latest)"
pg_sql b "$REPL_DB" "UPDATE songs SET title = 'B32 older column', updated_at = '2024-06-01+00' WHERE id = 32"
both "sequential (latest) 2"
is "$(titles a 32 32)" '32=B32 older column' "sequential: b's update wins under latest with an older updated_at"
is "$(winners ab 31 32)$(winners ba 31 32)" '' "sequential updates are no conflict"
repl_same "sequential" a b

# ---- update against delete, under latest, both ways --------------------------------------
# 41: a updates (old updated_at), b deletes   -> delete wins
# 42: a updates (updated_at now + 2 min), b deletes -> update wins
# 43: a deletes, b updates (old updated_at)   -> delete wins
# 44: a deletes, b updates (now + 2 min)      -> update wins
pg_sql a "$REPL_DB" "UPDATE songs SET title = 'A41', updated_at = '2020-01-01+00' WHERE id = 41;
                     UPDATE songs SET title = 'A42', updated_at = now() + interval '2 minutes' WHERE id = 42;
                     DELETE FROM songs WHERE id IN (43, 44)"
pg_sql b "$REPL_DB" "DELETE FROM songs WHERE id IN (41, 42);
                     UPDATE songs SET title = 'B43', updated_at = '2020-01-01+00' WHERE id = 43;
                     UPDATE songs SET title = 'B44', updated_at = now() + interval '2 minutes' WHERE id = 44"
both "update/delete"
is "$(titles a 41 44)" '42=A42,44=B44' "update/delete: old updates lose to deletes, new ones win (a)"
is "$(titles b 41 44)" '42=A42,44=B44' "update/delete: same on b"
is "$(winners ab 41 44)" '41:b,42:a,43:a,44:b' "update/delete: four decisions logged"
repl_same "update/delete" a b
both "update/delete, again"
is "$RUN_I/$RUN_U/$RUN_D/$RUN_C" 0/0/0/0 "update/delete: settled"

# ---- equal updated_at (Rails update_all): the later change time wins ---------------------
# 51: a first, then b -> b; 52: b first, then a -> a
pg_sql a "$REPL_DB" "UPDATE songs SET plays = 111 WHERE id = 51"
pg_sql b "$REPL_DB" "UPDATE songs SET plays = 222 WHERE id = 51"
pg_sql b "$REPL_DB" "UPDATE songs SET plays = 222 WHERE id = 52"
pg_sql a "$REPL_DB" "UPDATE songs SET plays = 111 WHERE id = 52"
# tags (no updated_at): 1: b first then a -> a; 2: a first then b -> b
pg_sql b "$REPL_DB" "UPDATE tags SET name = 'B1' WHERE id = 1"
pg_sql a "$REPL_DB" "UPDATE tags SET name = 'A1' WHERE id = 1"
pg_sql a "$REPL_DB" "UPDATE tags SET name = 'A2' WHERE id = 2"
pg_sql b "$REPL_DB" "UPDATE tags SET name = 'B2' WHERE id = 2"
both "equal updated_at"
for n in a b; do
	is "$(repl_val $n 'SELECT string_agg(id || $$=$$ || plays, $$,$$ ORDER BY id) FROM songs WHERE id IN (51, 52)')" \
		'51=222,52=111' "equal updated_at: the later change wins per row ($n)"
	is "$(repl_val $n 'SELECT string_agg(id || $$=$$ || name, $$,$$ ORDER BY id) FROM tags WHERE id IN (1, 2)')" \
		'1=A1,2=B2' "table without updated_at: the later change wins per row ($n)"
done
like "$(meta "SELECT rule FROM repctl.conflict WHERE table_name = 'songs' AND pk = '{\"id\": 51}'")" \
	'equal values, later change time' "equal updated_at: the rule says why"
repl_same "equal updated_at" a b

# ---- source in a multi-source sync of the same herd: the herd's ranks decide ---------------
# m lists b first, but ab lists a first: both rank 0 in herd h, so a (the
# smaller name) wins in m exactly as it does in ab and ba.
run_repctl add sync m relgroup=h dbs=b:source,a:source conflict_strategy=source
is "$RC" 0 "add sync m (b listed first)"
pg_sql b "$REPL_DB" "UPDATE songs SET title = 'B' || id, updated_at = '2024-06-01+00' WHERE id IN (55, 56)"
pg_sql a "$REPL_DB" "UPDATE songs SET title = 'A' || id, updated_at = '2024-06-05+00' WHERE id IN (55, 56)"
repl_run m
is "$RUN_RC/$RUN_C" 0/2 "multi-source source: one run, 2 conflicts"
is "$(titles a 55 56)" '55=A55,56=A56' "multi-source source: the herd's ranks tie, a wins (a)"
is "$(titles b 55 56)" '55=A55,56=A56' "multi-source source: the herd's ranks tie, a wins (b)"
is "$(winners m 55 56)" '55:a,56:a' "multi-source source: logged with winner a"
repl_same "multi-source source" a b

# ---- the conflict log ------------------------------------------------------------------------
run_repctl conflicts
is "$RC" 0 "repctl conflicts"
like "$OUT" 'songs.*\{"id": 1\}.*latest' "conflicts lists the song 1 decision"
like "$OUT" 'tags' "conflicts lists the tags decisions"
run_repctl conflicts ab --json
is "$RC" 0 "repctl conflicts ab --json"
if json_ok "$OUT"; then pass "conflicts --json is valid JSON"; else fail "conflicts --json is valid JSON" "$OUT"; fi
j=$OUT
is "$(json_eval "$j" "[(c['remote_row']['title'], c['local_row']['title'], c['winner']) for c in d if c['table_name'] == 'songs' and c['pk'] == {'id': 1}][0]")" \
	"('A1', 'B1', 'a')" "--json: both versions of song 1 as JSON objects, and the winner"
is "$(json_eval "$j" "[(c['remote_row'], c['local_row']['title']) for c in d if c['table_name'] == 'songs' and c['pk'] == {'id': 43}][0]")" \
	"(None, 'B43')" "--json: a deleted version is null, the other the row"
is "$(json_eval "$j" "sorted(set(c['sync'] for c in d))")" "['ab']" "conflicts ab shows only sync ab"

done_testing
