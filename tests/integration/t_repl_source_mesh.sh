#!/usr/bin/env bash
# tests/integration/t_repl_source_mesh.sh - conflict_strategy=source in a
# mesh ranks a version by the node that made it (its origin), not by the
# node that relays it.
#
# One sync m with dbs=a:source,b:source,c:source: ranks a 0, b 1, c 2.
# Songs 1..5 are changed on b and on c, each unaware of the other's change
# (different titles).  Then c's versions reach a first and a relays them to
# b: b is offline (its cluster stopped) during the first run, so only a <-> c
# goes through (c's versions land on a, with origin c); b comes back, and
# the first edge of the next run, a -> b, meets b's own versions with c's
# versions relayed by a.  (sync_run's edges run a->b, a->c, b->a, b->c,
# c->a, c->b: the shadow origins and the conflict log show the path.)
#
# Proves:
#  - after the first run a holds c's versions, recorded with origin c;
#  - the conflicts are decided on edge a -> b, between versions from 'c'
#    (relayed by a) and 'b', and b's versions win (origin b, rank 1, beats
#    origin c, rank 2, whichever node carries c's version), logged with
#    winner b;
#  - every node ends with b's versions, identical; a later run is quiet.
# Today the relaying node's rank is used: a (rank 0) carrying c's versions
# beats b, and c's versions win everywhere although b is listed before c.
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

repl_setup a b c
# b's edges fail while it is down: keep the breaker out of the way
repl_config 'circuit = { failures = 1000; };'
run_repctl add sync m relgroup=h dbs=a:source,b:source,c:source conflict_strategy=source
is "$RC" 0 "add sync m (a, b, c)"

meta() { pg_sql meta postgres "$1"; }

titles() {
	repl_val "$1" "SELECT coalesce(string_agg(id || '=' || title, ',' ORDER BY id), '') FROM songs WHERE id BETWEEN $2 AND $3"
}

# origins NODE FROM TO : "id=origin,..." from NODE's shadow table of songs ("-" for a local change)
origins() {
	repl_psql "$1" <<<"SELECT format('SELECT coalesce(string_agg(id || %L || coalesce(repctl_origin, %L), %L ORDER BY id), %L) FROM repctl.%I WHERE id BETWEEN $2 AND $3', '=', '-', ',', '', shadow) FROM repctl.captured WHERE table_name = 'songs' \\gexec"
}

# decisions FROM TO : "id:remote_node>local_node:winner,..." of the conflicts logged on songs
decisions() {
	meta "SELECT coalesce(string_agg((pk->>'id') || ':' || remote_node || '>' || local_node || ':' || winner, ','
	                                 ORDER BY (pk->>'id')::int, id), '')
	        FROM repctl.conflict WHERE sync = 'm' AND table_name = 'songs' AND (pk->>'id')::int BETWEEN $1 AND $2"
}

# ---- converged start ------------------------------------------------------------------------
pg_sql a "$REPL_DB" "INSERT INTO songs (id, title, updated_at) SELECT g, 'orig ' || g, '2024-01-01 00:00:00+00' FROM generate_series(1, 10) g"
rc=0
repl_converge 5 m || rc=$?
is "$rc" 0 "initial copy: quiet"
repl_same "initial copy" a b c
is "$(meta "SELECT count(*) FROM repctl.conflict")" 0 "no conflict so far"

# ---- b and c change songs 1..5, each unaware of the other --------------------------------------
# (c's versions are the newer ones: source must not care)
pg_sql b "$REPL_DB" "UPDATE songs SET title = 'B' || id, updated_at = '2024-06-01+00' WHERE id BETWEEN 1 AND 5"
pg_sql c "$REPL_DB" "UPDATE songs SET title = 'C' || id, updated_at = '2024-06-05+00' WHERE id BETWEEN 1 AND 5"

# ---- b offline: c's versions reach a only ----------------------------------------------------
pg_stop b
repl_run m
ok test "$RUN_RC" -ne 0
like "$RUN_ERR" "'b'|b ->|-> b" "run with b down: b's edges fail, naming b"
is "$RUN_C" 0 "run with b down: no conflict (a had not changed the rows)"
is "$(titles a 1 5)" '1=C1,2=C2,3=C3,4=C4,5=C5' "c's versions reached a"
is "$(origins a 1 5)" '1=c,2=c,3=c,4=c,5=c' "a recorded them with origin c"
is "$(origins c 1 5)" '1=-,2=-,3=-,4=-,5=-' "on c they are local changes"

# ---- b back: a relays c's versions to b, where b's own versions are ------------------------
pg_start b
is "$(titles b 1 5)" '1=B1,2=B2,3=B3,4=B4,5=B5' "b kept its versions while it was down"
repl_run m
is "$RUN_RC/$RUN_C" 0/5 "the next run is good and decides 5 conflicts"
like "$RUN_ERR" "key \\{\"id\": 1\\}: update/update version from 'c' vs 'b'" \
	"the conflict is between c's version (relayed) and b's"
unlike "$RUN_ERR" "version from 'a'" "no version is taken for a's"
is "$(decisions 1 5)" '1:a>b:b,2:a>b:b,3:a>b:b,4:a>b:b,5:a>b:b' \
	"decided on edge a -> b (a relaying), winner b: origin b (rank 1) beats origin c (rank 2)"

rc=0
repl_converge 5 m || rc=$?
is "$rc" 0 "m quiet again"
for n in a b c; do
	is "$(titles "$n" 1 5)" '1=B1,2=B2,3=B3,4=B4,5=B5' "$n holds b's versions"
done
repl_same "after the relay" a b c
is "$(decisions 1 5)" '1:a>b:b,2:a>b:b,3:a>b:b,4:a>b:b,5:a>b:b' "no further conflict when b's versions travel"

sa=$(repl_sums a)$(repl_shadow_sums a) sb=$(repl_sums b)$(repl_shadow_sums b) sc=$(repl_sums c)$(repl_shadow_sums c)
repl_run m
is "$RUN_RC/$RUN_I/$RUN_U/$RUN_D/$RUN_C" 0/0/0/0/0 "a later run changes nothing"
is "$(repl_sums a)$(repl_shadow_sums a)/$(repl_sums b)$(repl_shadow_sums b)/$(repl_sums c)$(repl_shadow_sums c)" \
	"$sa/$sb/$sc" "rows and versions unchanged on every node"

done_testing
