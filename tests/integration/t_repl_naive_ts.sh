#!/usr/bin/env bash
# tests/integration/t_repl_naive_ts.sh - a conflict column of type timestamp
# without time zone (what Rails creates: ar_internal_metadata.updated_at is
# timestamp(6)) on servers whose TimeZone is not UTC.
#
# Both nodes' database has TimeZone America/New_York (ALTER DATABASE ... SET
# timezone), so the application writes New York wall-clock times
# (localtimestamp), 4 or 5 hours behind UTC.  Under latest:
#  - update against delete: a delete has no column value, so both versions
#    compete with their change times at the origin; the later change wins,
#    whichever it is, on either node:
#      k1: a deletes, then b updates        -> b's update wins (row kept)
#      k5: b deletes, then a updates        -> a's update wins (row kept)
#      k2: b updates, then a deletes        -> a's delete wins (row gone)
#      k6: a updates, then b deletes        -> b's delete wins (row gone)
#  - update against update, both naive local times: the later value wins:
#      k3: a, then b -> b's; k4: b, then a -> a's;
#  - each conflict is logged once with that winner, a and b end identical
#    and a later round is quiet.
# Today the naive value is read as UTC, hours earlier than it was written,
# so a delete made seconds before the update beats it (k1, k5).
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

repl_setup a b
run_repctl add sync ab relgroup=h dbs=a:source,b:target conflict_strategy=latest
is "$RC" 0 "add sync ab"
run_repctl add sync ba relgroup=h dbs=b:source,a:target conflict_strategy=latest
is "$RC" 0 "add sync ba"

meta() { pg_sql meta postgres "$1"; }

for n in a b; do
	pg_sql "$n" postgres "ALTER DATABASE $REPL_DB SET timezone = 'America/New_York'"
	is "$(repl_val "$n" 'SHOW timezone')" America/New_York "$n: the database's TimeZone is America/New_York"
done
offset=$(repl_val a "SELECT extract(epoch FROM localtimestamp - (now() AT TIME ZONE 'UTC')) / 3600")
note "New York is $offset h from UTC now"
if ((${offset%%.*} <= -4)); then
	pass "local time (New York) is at least 4 h behind UTC"
else
	fail "local time (New York) is at least 4 h behind UTC" "offset: $offset h"
fi

# kv NODE : "key=value,..." of ar_internal_metadata
kv() {
	repl_val "$1" "SELECT coalesce(string_agg(key || '=' || value, ',' ORDER BY key), '') FROM ar_internal_metadata"
}

# winners : "key:winner,..." of the conflicts logged on ar_internal_metadata, both syncs
winners() {
	meta "SELECT coalesce(string_agg((pk->>'key') || ':' || winner, ',' ORDER BY pk->>'key', id), '')
	        FROM repctl.conflict WHERE table_name = 'ar_internal_metadata'"
}

both() {
	repl_run ab
	is "$RUN_RC" 0 "$1: run ab is good"
	repl_run ba
	is "$RUN_RC" 0 "$1: run ba is good"
}

# ---- converged start, values an hour old (New York time) ---------------------------------------
pg_sql a "$REPL_DB" "INSERT INTO ar_internal_metadata (key, value, created_at, updated_at)
                     SELECT 'k' || g, 'orig', localtimestamp - interval '1 hour', localtimestamp - interval '1 hour'
                       FROM generate_series(1, 6) g"
rc=0
repl_converge 5 ab ba || rc=$?
is "$rc" 0 "initial copy: quiet"
repl_same "initial copy" a b
is "$(kv b)" 'k1=orig,k2=orig,k3=orig,k4=orig,k5=orig,k6=orig' "b has the six rows"

# ---- the first change of each pair, then, a second later, the second --------------------------
pg_sql a "$REPL_DB" "DELETE FROM ar_internal_metadata WHERE key = 'k1';
                     UPDATE ar_internal_metadata SET value = 'A first', updated_at = localtimestamp WHERE key IN ('k3', 'k6')"
pg_sql b "$REPL_DB" "DELETE FROM ar_internal_metadata WHERE key = 'k5';
                     UPDATE ar_internal_metadata SET value = 'B first', updated_at = localtimestamp WHERE key IN ('k2', 'k4')"
sleep 1
pg_sql b "$REPL_DB" "UPDATE ar_internal_metadata SET value = 'B later', updated_at = localtimestamp WHERE key IN ('k1', 'k3');
                     DELETE FROM ar_internal_metadata WHERE key = 'k6'"
pg_sql a "$REPL_DB" "UPDATE ar_internal_metadata SET value = 'A later', updated_at = localtimestamp WHERE key IN ('k4', 'k5');
                     DELETE FROM ar_internal_metadata WHERE key = 'k2'"
is "$(kv a)" 'k3=A first,k4=A later,k5=A later,k6=A first' "a before the syncs"
is "$(kv b)" 'k1=B later,k2=B first,k3=B later,k4=B first' "b before the syncs"
note "b's k1 update: updated_at $(repl_val b "SELECT updated_at FROM ar_internal_metadata WHERE key = 'k1'") (New York), now $(repl_val b "SELECT now() AT TIME ZONE 'UTC'") UTC"

both "naive"
rc=0
repl_converge 5 ab ba || rc=$?
is "$rc" 0 "quiet again"

want='k1=B later,k3=B later,k4=A later,k5=A later'
is "$(kv a)" "$want" "a: the later change wins each conflict (k1, k5: the update made after the delete)"
is "$(kv b)" "$want" "b: the same"
is "$(winners)" 'k1:b,k2:a,k3:b,k4:a,k5:a,k6:b' "each conflict logged once, the later change the winner"
repl_same "after the conflicts" a b

sa=$(repl_sums a)$(repl_shadow_sums a) sb=$(repl_sums b)$(repl_shadow_sums b)
both "later"
is "$RUN_I/$RUN_U/$RUN_D/$RUN_C" 0/0/0/0 "a later round writes nothing"
is "$(repl_sums a)$(repl_shadow_sums a)/$(repl_sums b)$(repl_shadow_sums b)" "$sa/$sb" "rows and versions unchanged"

done_testing
