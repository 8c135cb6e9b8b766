#!/usr/bin/env bash
# tests/integration/t_install.sh - `repctl install` and what works before it.
#
# Proves:
#  - help, help <words>, version work without any database (metadata
#    conninfo pointing at a closed port, even with a missing config file);
#  - unknown, ambiguous and missing command words (and unknown options) exit 2
#    and list the valid words;
#  - an unreachable metadata database is a clear error naming the metadata
#    database and hinting at REPCTL_META;
#  - before install, every command needing the metadata refuses with a
#    message pointing at 'repctl install' and writes nothing (config works);
#  - install creates schema repctl at this binary's schema version (read from
#    repctl.schema_version; 1 today = the highest sql/meta_NNN.sql); a second
#    install says nothing to do and changes nothing; two concurrent installs
#    both succeed and record each version once;
#  - a metadata schema newer than the binary is refused by every command and
#    by install, which changes nothing.
# shellcheck disable=SC2119 # meta_snapshot, rc_nonzero: optional arguments
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/common.sh"
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/pg.sh"
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/fixtures.sh"

# The schema version this binary installs: the highest sql/meta_NNN.sql.
want_version=$(find "$ROOT/sql" -maxdepth 1 -name 'meta_[0-9][0-9][0-9].sql' -printf '%f\n' |
	sed 's/^meta_0*\([0-9][0-9]*\)\.sql$/\1/' | sort -n | tail -n 1)
note "binary's metadata schema version (from sql/meta_NNN.sql): $want_version"

# ---- without any database --------------------------------------------------
fx_closed_port
closed=$FX_CLOSED_PORT
export REPCTL_META="host=127.0.0.1 port=$closed user=postgres dbname=postgres"
export REPCTL_STATE_DIR=$TEST_TMP/state
unset REPCTL_CONFIG REPCTL_NODE

run_repctl help
is "$RC" 0 "help works without a database"
like "$OUT" '^usage: repctl ' "help prints the usage"
for w in 'install' 'add database <name>' 'add all tables' 'add sync <name>' 'validate' 'status'; do
	has_str "$OUT" "  $w" "help lists '$w'"
done

run_repctl help add sync
is "$RC" 0 "help add sync works without a database"
like "$OUT" '^usage: repctl add sync NAME herd=HERD dbs=' "help add sync shows its usage"
like "$OUT" 'relgroup=' "help add sync mentions Bucardo's relgroup="
like "$OUT" 'latest, first, source' "help add sync lists the strategies"
unlike "$OUT" 'usage: repctl add database' "help add sync shows only add sync"

run_repctl version
is "$RC" 0 "version works without a database"
like "$OUT" '^repctl [0-9]+\.[0-9]+\.[0-9]+' "version prints 'repctl X.Y.Z'"
version_line=$OUT
run_repctl --version
is "$OUT" "$version_line" "--version prints the same"

# help must not even read the configuration file.
REPCTL_CONFIG=$TEST_TMP/no-such.conf run_repctl help add database
is "$RC" 0 "help works with a missing configuration file"
like "$OUT" '^usage: repctl add database NAME' "... and shows add database"
REPCTL_CONFIG=$TEST_TMP/no-such.conf run_repctl version
is "$RC" 0 "version works with a missing configuration file"

# ---- the grammar: unknown / ambiguous / missing words ------------------------
run_repctl frobnicate
is "$RC" 2 "unknown command word exits 2"
like "$ERR" "unknown word 'frobnicate'" "... names the word"
like "$ERR" 'valid words: .*install.*add.*remove.*list.*update.*validate.*status' \
	"... lists the valid words"
is "$OUT" "" "... prints nothing on stdout"

run_repctl v
is "$RC" 2 "ambiguous abbreviation exits 2"
like "$ERR" "ambiguous word 'v'" "... says it is ambiguous"
like "$ERR" 'version, validate' "... lists the candidates"

run_repctl add
is "$RC" 2 "missing word exits 2"
like "$ERR" "missing word after 'add'" "... says which word is missing"
like "$ERR" 'expected one of: database, table, all, herd, sync' "... lists the valid words"

run_repctl add frob
is "$RC" 2 "unknown second word exits 2"
like "$ERR" "unknown word 'frob' after 'add'; valid words: database, table, all, herd, sync" \
	"... names it and lists the valid words"

run_repctl list
is "$RC" 2 "list without a word exits 2"
like "$ERR" 'expected one of: databases, herds, tables, syncs' "... lists the valid words"

run_repctl update frob x
is "$RC" 2 "update frob exits 2"
like "$ERR" "unknown word 'frob' after 'update'; valid words: database, sync" "... lists them"

run_repctl add database
is "$RC" 2 "add database without a name exits 2"
like "$ERR" "'add database' needs a name" "... says the name is missing"
like "$ERR" 'usage: repctl add database NAME dbname=DB' "... shows the usage"

run_repctl add sync s1
is "$RC" 2 "add sync without herd= exits 2"
like "$ERR" "'add sync' needs herd=" "... names the required option"

run_repctl list databases --bogus
is "$RC" 2 "unknown option exits 2"
like "$ERR" "unknown option 'bogus' for 'list databases'; valid options: json" \
	"... names it and lists the valid options"

run_repctl --bogus list
is "$RC" 2 "unknown global option exits 2"
like "$ERR" "unknown global option '--bogus'" "... names it"

run_repctl
is "$RC" 2 "no command at all exits 2"
like "$OUT$ERR" 'usage: repctl' "... and prints the usage"

run_repctl help frobnicate
rc_nonzero
like "$ERR" "frobnicate" "help of an unknown command names it"
like "$ERR" "repctl help" "... and points at 'repctl help'"

# ---- unreachable metadata database --------------------------------------------
for cmd in "install" "list databases" "status"; do
	# shellcheck disable=SC2086 # word splitting of cmd is wanted
	run_repctl $cmd
	rc_nonzero
	like "$ERR" 'cannot connect to the metadata database' "$cmd: names the metadata database"
	like "$ERR" "port=$closed" "$cmd: shows where it tried to connect"
	like "$ERR" 'Connection refused' "$cmd: says why"
	like "$ERR" '^hint: .*REPCTL_META' "$cmd: hints at REPCTL_META"
	is "$OUT" "" "$cmd: nothing on stdout"
done

# ---- before install ---------------------------------------------------------------
pg_start META
fx_env META
before=$(meta_snapshot)
is "$(head -n 1 <<<"$before")" "schema repctl: absent" "fresh metadata database has no schema repctl"

run_repctl config
is "$RC" 0 "config works before install"
like "$OUT" 'configuration OK' "... and says the configuration is OK"

port_meta=$(pg_port META)
not_installed=(
	"list databases"
	"list herds"
	"list tables"
	"list syncs"
	"status"
	"validate"
	"add database a dbname=postgres host=127.0.0.1 port=$port_meta user=postgres"
	"add herd h"
	"add all tables --herd=h --db=a"
	"add table public.t --herd=h --db=a"
	"add sync s herd=h dbs=a:source,b:target"
	"update database a status=inactive"
	"update sync s interval=5"
	"remove database a"
	"remove herd h"
	"remove sync s"
	"remove table public.t"
)
for cmd in "${not_installed[@]}"; do
	# shellcheck disable=SC2086 # word splitting of cmd is wanted
	run_repctl $cmd
	is "$RC" 1 "before install: '$cmd' refuses (exit 1)"
	like "$ERR" 'metadata schema is not installed' "before install: '$cmd' says what is wrong"
	like "$ERR" "hint: run 'repctl install'" "before install: '$cmd' says to run 'repctl install'"
done
is "$(meta_snapshot)" "$before" "refused commands wrote nothing"

# ---- install -----------------------------------------------------------------------
run_repctl install
is "$RC" 0 "install succeeds"
like "$OUT" "installed metadata schema version $want_version" "install reports the version"
like "$OUT" "port=$port_meta" "install names the metadata database"
is "$ERR" "" "install prints nothing on stderr"
is "$(pg_sql META postgres 'SELECT max(version) FROM repctl.schema_version')" "$want_version" \
	"repctl.schema_version holds the binary's version"
is "$(pg_sql META postgres 'SELECT string_agg(version::text, $$,$$ ORDER BY version) FROM repctl.schema_version')" \
	"$(seq -s, 1 "$want_version")" "one schema_version row per migration"
is "$(pg_sql META postgres "SELECT string_agg(c.relname, ',' ORDER BY c.relname) FROM pg_class c
	JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE n.nspname = 'repctl' AND c.relkind = 'r'
	AND c.relname IN ('node', 'herd', 'herd_table', 'sync', 'sync_node', 'run', 'conflict', 'schema_version')")" \
	"conflict,herd,herd_table,node,run,schema_version,sync,sync_node" "the metadata tables exist"

after_first=$(meta_snapshot)
run_repctl install
is "$RC" 0 "second install succeeds"
like "$OUT" "already at version $want_version" "second install says the version"
like "$OUT" 'nothing to do' "second install says nothing to do"
is "$(meta_snapshot)" "$after_first" "second install changed nothing"

run_repctl list databases
is "$RC" 0 "after install, list databases works"

# ---- two installs at once ---------------------------------------------------------
pg_createdb META meta2
meta2=$(pg_conninfo META meta2)
REPCTL_META=$meta2 "$REPCTL" install >"$TEST_TMP/i1.out" 2>&1 &
p1=$!
REPCTL_META=$meta2 "$REPCTL" install >"$TEST_TMP/i2.out" 2>&1 &
p2=$!
rc1=0 rc2=0
wait "$p1" || rc1=$?
wait "$p2" || rc2=$?
is "$rc1/$rc2" "0/0" "two concurrent installs both succeed"
note "install 1: $(<"$TEST_TMP/i1.out")"
note "install 2: $(<"$TEST_TMP/i2.out")"
is "$(pg_sql META meta2 'SELECT count(*) - count(DISTINCT version) || $$/$$ || max(version) FROM repctl.schema_version')" \
	"0/$want_version" "concurrent installs recorded each version once"

# ---- a schema newer than this binary ---------------------------------------------
newer=$((want_version + 1))
pg_sql META meta2 "INSERT INTO repctl.schema_version (version) VALUES ($newer)"
snap_newer=$(meta_snapshot META meta2)
REPCTL_META=$meta2 run_repctl list databases
is "$RC" 1 "a newer metadata schema is refused"
like "$ERR" "version $newer, newer than this repctl" "... saying which versions"
like "$ERR" '^hint: ' "... with a hint"
REPCTL_META=$meta2 run_repctl install
is "$RC" 1 "install refuses to downgrade a newer schema"
like "$ERR" "newer than this repctl" "... saying why"
like "$ERR" "nothing changed" "... and that nothing changed"
is "$(meta_snapshot META meta2)" "$snap_newer" "refusing a newer schema changed nothing"

done_testing
