#!/usr/bin/env bash
# tests/integration/t_repl_conflict_scale.sh - conflicts are decided
# set-based: 20,000 true conflicts in one run take seconds, not the minutes
# of one UPDATE of an unindexed temporary table per conflict (quadratic).
#
# 20,000 songs, converged on a and b, are then updated on both sides with
# different titles and distinct updated_at: odd ids newer on a, even ids
# newer on b.  One `repctl run ab` decides all of them.
#
# Proves:
#  - the run finishes within $REPL_SCALE_BOUND seconds (default 120, meant
#    for an ASan build; the time is printed); a run killed by that timeout
#    is the failure, the rest is then not checked;
#  - it is good, reports exactly 20,000 conflicts, and logs exactly 20,000
#    in repctl.conflict for the run, 10,000 won by each node;
#  - each row's newer version is on b afterwards (per row, not per table);
#  - ba then brings a to the same state without a new conflict: both nodes
#    hold every row's newer version, identical, and a later round is quiet.
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

N=${REPL_SCALE_N:-20000} # the number of conflicting rows (100000 for the issue's figure)
BOUND=${REPL_SCALE_BOUND:-120}

repl_setup a b
run_repctl add sync ab relgroup=h dbs=a:source,b:target conflict_strategy=latest
is "$RC" 0 "add sync ab"
run_repctl add sync ba relgroup=h dbs=b:source,a:target conflict_strategy=latest
is "$RC" 0 "add sync ba"

meta() { pg_sql meta postgres "$1"; }

# newer NODE : rows of songs holding their newer version (odd ids a's, even ids b's)
newer() {
	repl_val "$1" "SELECT count(*) FROM songs
	                WHERE title = CASE WHEN id % 2 = 1 THEN 'A' ELSE 'B' END || id
	                  AND updated_at = '2024-01-01+00'::timestamptz + id * interval '1 s' + interval '1 day'"
}

# ---- converged start: N songs --------------------------------------------------------------
pg_sql a "$REPL_DB" "INSERT INTO songs (id, title, updated_at) SELECT g, 'orig ' || g, '2023-01-01+00' FROM generate_series(1, $N) g"
rc=0
repl_converge 5 ab ba || rc=$?
is "$rc" 0 "initial copy: quiet"
is "$(repl_val b 'SELECT count(*) FROM songs')" "$N" "b has the $N songs"

# ---- N conflicts: every row changed on both sides, odd ids newer on a, even on b --------------
pg_sql a "$REPL_DB" "UPDATE songs SET title = 'A' || id,
                       updated_at = '2024-01-01+00'::timestamptz + id * interval '1 s'
                                    + CASE WHEN id % 2 = 1 THEN interval '1 day' ELSE interval '0' END"
pg_sql b "$REPL_DB" "UPDATE songs SET title = 'B' || id,
                       updated_at = '2024-01-01+00'::timestamptz + id * interval '1 s'
                                    + CASE WHEN id % 2 = 0 THEN interval '1 day' ELSE interval '0' END"
is "$(newer a)/$(newer b)" "$((N / 2))/$((N / 2))" "each node holds the newer version of half the rows"

# ---- one run decides them all -------------------------------------------------------------------
rc=0
t0=$EPOCHREALTIME
timeout -k 10 "$BOUND" "$REPCTL" run ab >"$TEST_TMP/ab.out" 2>"$TEST_TMP/ab.err" || rc=$?
t1=$EPOCHREALTIME
secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
out=$(<"$TEST_TMP/ab.out")
note "run ab with $N conflicts: exit $rc after $secs s: $out"
grep -v '^repctl: conflict on ' "$TEST_TMP/ab.err" | head -n 20 | sed 's/^/#   stderr: /' || true
if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$TEST_TMP/ab.err"; then
	fail "no sanitizer report from repctl run ab" "$(head -n 60 "$TEST_TMP/ab.err")"
fi
if ((rc == 124 || rc == 137)); then
	fail "run ab with $N conflicts finishes within $BOUND s" "killed by timeout after $secs s (conflicts decided one by one?)"
	done_testing
fi
pass "run ab with $N conflicts finishes within $BOUND s ($secs s)"
is "$rc" 0 "run ab is good"
re='I/U/D ([0-9]+)/([0-9]+)/([0-9]+), ([0-9]+) conflict'
conf=-1 upd=-1
if [[ $out =~ $re ]]; then
	upd=${BASH_REMATCH[2]} conf=${BASH_REMATCH[4]}
fi
is "$conf" "$N" "run ab reports $N conflicts"
is "$upd" "$((N / 2))" "run ab updates the $((N / 2)) rows a won"
is "$(grep -c '^repctl: conflict on ' "$TEST_TMP/ab.err" || true)" "$N" "one conflict line per row on stderr"
is "$(meta "SELECT conflicts FROM repctl.run WHERE sync = 'ab' ORDER BY id DESC LIMIT 1")" "$N" \
	"the run history records $N conflicts"
is "$(meta "SELECT count(*) FILTER (WHERE winner = 'a') || '/' || count(*) FILTER (WHERE winner = 'b') || '/' || count(DISTINCT pk)
              FROM repctl.conflict WHERE sync = 'ab' AND table_name = 'songs'")" \
	"$((N / 2))/$((N / 2))/$N" "exactly $N conflicts logged, one per row, $((N / 2)) won by each node"
is "$(meta "SELECT count(*) FROM repctl.conflict
             WHERE sync = 'ab' AND winner <> CASE WHEN (pk->>'id')::int % 2 = 1 THEN 'a' ELSE 'b' END")" 0 \
	"every logged winner is the row's newer version"
is "$(newer b)" "$N" "b holds every row's newer version"

# ---- ba: a catches up, without deciding again ---------------------------------------------------
repl_run ba
is "$RUN_RC/$RUN_C" 0/0 "ba is good, no new conflict (b's merged versions dominate)"
is "$(newer a)" "$N" "a holds every row's newer version"
rc=0
repl_converge 5 ab ba || rc=$?
is "$rc" 0 "ab and ba quiet"
repl_same "after $N conflicts" a b
is "$(meta "SELECT count(*) FROM repctl.conflict")" "$N" "no conflict logged beyond the $N"

done_testing
