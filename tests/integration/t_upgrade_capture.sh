#!/usr/bin/env bash
# tests/integration/t_upgrade_capture.sh - `repctl install` over an older
# metadata schema refreshes the capture on every node, so the nodes run
# this version's triggers (counters that are never reused) without a
# `remove table` / `add table` (which would reset the rows' histories).
#
# Proves, on two real nodes (b stopped for the second half):
#  - an upgrade from version 5 says "upgraded", names each node with the
#    number of tables refreshed, and the trigger functions are this
#    version's again (an old +1 counter body is replaced);
#  - the shadow rows (the histories) are untouched by the refresh;
#  - an unreachable node is named with the command that does it later, the
#    exit status is 1, and the reachable node is refreshed all the same.
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
run_repctl add sync ab relgroup=h dbs=a:source,b:source
is "$RC" 0 "add sync ab"
repl_sql a "INSERT INTO songs (id, title) VALUES (1, 'one')"
repl_converge 4 ab

meta() { pg_sql meta postgres "$1"; }

# make node N's capture look like an older version's: +1 counters
downgrade_capture() {
	repl_psql "$1" <<-'SQL'
		SELECT format('%s', replace(pg_get_functiondef(p.oid),
		              'greatest(coalesce((s.repctl_vv ->> ', 'least(coalesce((s.repctl_vv ->> '))
		  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
		 WHERE n.nspname = 'repctl' AND p.proname LIKE 'cap\_%' \gexec
	SQL
}
# how many capture functions of node N have this version's counters
new_funcs() {
	repl_val "$1" "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
	                WHERE n.nspname = 'repctl' AND p.proname LIKE 'cap\_%'
	                  AND p.prosrc LIKE '%greatest(coalesce((s.repctl_vv%'"
}
# back to metadata version 5
meta_v5() {
	meta "DELETE FROM repctl.schema_version WHERE version >= 6;
	      ALTER TABLE repctl.position DROP COLUMN IF EXISTS source_epoch"
}

ntables=$(repl_val a "SELECT count(*) FROM repctl.captured")
ok test "$ntables" -gt 5
is "$(new_funcs a)" "$ntables" "a runs this version's capture"
downgrade_capture a
downgrade_capture b
is "$(new_funcs a)" 0 "a's capture made old"
shadow_a=$(repl_shadow_sums a)
meta_v5
run_repctl install
is "$RC" 0 "install over version 5"
like "$OUT" 'upgraded metadata schema from version 5' "install says it upgraded"
like "$OUT" "node 'a': capture of $ntables table\\(s\\) refreshed" "install names node a"
like "$OUT" "node 'b': capture of [0-9]+ table\\(s\\) refreshed" "install names node b"
is "$(new_funcs a)" "$ntables" "a's capture is this version's again"
is "$(new_funcs b)" "$(repl_val b "SELECT count(*) FROM repctl.captured")" "b's too"
is "$(repl_shadow_sums a)" "$shadow_a" "the histories (shadow rows) are untouched"
repl_sql a "UPDATE songs SET title = 'one, later' WHERE id = 1"
ok test "$(repl_val a "SELECT (repctl_vv->>'a')::bigint FROM repctl.$(repl_val a "SELECT shadow FROM repctl.captured WHERE table_name = 'songs'") WHERE id = 1")" -gt 1000000000000000
repl_converge 4 ab
repl_same "after the upgrade" a b

# an unreachable node: named, exit 1, the other refreshed
downgrade_capture a
meta_v5
pg_stop b
run_repctl install
is "$RC" 1 "install with node b down exits 1"
like "$OUT" "node 'a': capture of $ntables table\\(s\\) refreshed" "a is refreshed anyway"
like "$ERR" "node 'b': the capture was not refreshed" "b is named"
like "$ERR" "repctl add all tables --herd=h --db=b" "with the command that does it later"
is "$(new_funcs a)" "$ntables" "a's capture is this version's"
is "$(meta 'SELECT max(version) FROM repctl.schema_version')" "$(ls "$ROOT"/sql/meta_*.sql | wc -l)" \
	"the metadata upgrade stands"

done_testing
