#!/usr/bin/env bash
# tests/integration/t_repl_ccol_name.sh - a conflict column whose name holds
# printf directives ("mod%s%n at") decides conflicts like any other: the name
# is quoted into the SQL as data, never used as a format (it used to be
# pasted into a format string: undefined behaviour, a crash under %n).
#
# Table pct (id, v, "mod%s%n at" timestamptz) on a and b, pair ab / ba with
# conflict_strategy=latest and conflict_column='mod%s%n at'.  Proves: both
# nodes update key 1 and key 2 with explicit column values (b later on key
# 1, a later on key 2); the runs are good, each conflict is logged once with
# the later value as winner, and a and b end identical.
# shellcheck disable=SC2153 # RUN_* are set by repl_run
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

REPL_SCHEMA_SQL+=$'\nCREATE TABLE pct (id int PRIMARY KEY, v text, "mod%s%n at" timestamptz);\n'
repl_setup a b
for s in ab:a:b ba:b:a; do
	IFS=: read -r name src tgt <<<"$s"
	run_repctl add sync "$name" relgroup=h "dbs=$src:source,$tgt:target" conflict_strategy=latest \
		'conflict_column=mod%s%n at'
	is "$RC" 0 "add sync $name with conflict_column='mod%s%n at'"
done
repl_sql a "INSERT INTO pct VALUES (1, 'base', '2026-01-01 00:00:00+00'), (2, 'base', '2026-01-01 00:00:00+00')"
ok repl_converge 4 ab ba
repl_sql a "UPDATE pct SET v = 'a', \"mod%s%n at\" = '2026-02-01 00:00:00+00' WHERE id = 1"
repl_sql b "UPDATE pct SET v = 'b', \"mod%s%n at\" = '2026-02-02 00:00:00+00' WHERE id = 1"
repl_sql a "UPDATE pct SET v = 'a', \"mod%s%n at\" = '2026-03-02 00:00:00+00' WHERE id = 2"
repl_sql b "UPDATE pct SET v = 'b', \"mod%s%n at\" = '2026-03-01 00:00:00+00' WHERE id = 2"
repl_run ab
is "$RUN_RC" 0 "run ab is good"
repl_run ba
is "$RUN_RC" 0 "run ba is good"
ok repl_converge 4 ab ba
for n in a b; do
	is "$(repl_val "$n" "SELECT string_agg(id || '=' || v, ',' ORDER BY id) FROM pct")" "1=b,2=a" \
		"$n: the later '%s%n' value won each key"
done
is "$(pg_sql meta postgres "SELECT count(*) FROM repctl.conflict WHERE table_name = 'pct'")" 2 \
	"two conflicts logged"
repl_same "a and b identical" a b

done_testing
