#!/usr/bin/env bash
# tests/integration/t_harness.sh - self-test of the integration test harness
# (lib/common.sh and lib/pg.sh): clusters start on distinct ports, answer
# queries, stop for real, and are gone (processes and files) after a test.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/common.sh"
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/pg.sh"

# (used through ok/fails/wait_until)
# shellcheck disable=SC2317
port_accepts() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# ---- assertions themselves ------------------------------------------------
is "$(printf 'a\nb')" $'a\nb' "is compares multi-line strings exactly"
like "foo 123 bar" '[0-9]{3}' "like uses extended regexps"
unlike "foo bar" '[0-9]' "unlike"
ok true
fails false
ok wait_until 1 true
fails wait_until 0.3 false

# A sub-test with a failing assertion must exit non-zero, report file:line,
# and keep its TEST_TMP.
sub=$TEST_TMP/sub_fail.sh
cat >"$sub" <<EOF
set -euo pipefail
. "$HERE/lib/common.sh"
echo "SUBTMP=\$TEST_TMP"
is 1 1 "passing one"
is 1 2 "failing one"
done_testing
EOF
rc=0
subout=$(bash "$sub" 2>&1) || rc=$?
is "$rc" 1 "a failing assertion makes the test exit 1"
like "$subout" '^not ok 2 - failing one$' "failure is reported TAP-style"
like "$subout" 'Failed test at .*sub_fail\.sh:5$' "failure reports file:line"
like "$subout" "^#.*got: '1'" "failure shows what we got"
like "$subout" '^1\.\.2$' "plan printed"
subtmp=$(sed -n 's/^SUBTMP=//p' <<<"$subout")
ok test -d "$subtmp"
like "$subout" "kept in $subtmp" "kept TEMP dir is announced"
rm -rf -- "$subtmp"

# A sub-test aborted by set -e must fail too, even with all checks passing.
printf '%s\n' "set -euo pipefail" ". \"$HERE/lib/common.sh\"" \
	"pass first" "false" "done_testing" >"$TEST_TMP/sub_abort.sh"
rc=0
subout=$(KEEP_TMP=0 bash "$TEST_TMP/sub_abort.sh" 2>&1) || rc=$?
isnt_zero=$([[ $rc != 0 ]] && echo yes || echo no)
is "$isnt_zero" yes "set -e abort makes the test fail (rc=$rc)"
like "$subout" 'last failing command: .*sub_abort\.sh:4: false' "abort location reported"
rm -rf -- "$(sed -n 's/^# test files kept in //p' <<<"$subout")"

# ---- two clusters ---------------------------------------------------------
pg_start A
pg_start B
note "A: $CONNINFO_A"
note "B: $CONNINFO_B"

is "$(pg_sql A postgres 'select 1')" 1 "cluster A answers select 1"
is "$(pg_sql B postgres 'select 1')" 1 "cluster B answers select 1"
ok test "$PGPORT_A" != "$PGPORT_B"
is "$(pg_sql A postgres 'show port')" "$PGPORT_A" "A listens on PGPORT_A"
is "$(pg_sql B postgres 'show port')" "$PGPORT_B" "B listens on PGPORT_B"
is "$(pg_conninfo A)" "$CONNINFO_A" "pg_conninfo A matches CONNINFO_A"
is "$(pg_conninfo B repdb)" "host=127.0.0.1 port=$PGPORT_B user=postgres dbname=repdb" \
	"pg_conninfo with dbname"
is "$(pg_sql A postgres 'show fsync')" off "fsync off"
is "$(pg_sql A postgres 'show listen_addresses')" 127.0.0.1 "listens on 127.0.0.1 only"
is "$(pg_sql A postgres 'select pg_encoding_to_char(encoding) from pg_database where datname = current_database()')" \
	UTF8 "UTF8 encoding"
is "$(pg_sql A postgres 'select current_user')" postgres "superuser is postgres"
fails pg_sql A postgres 'select no_such_column'

# Multi-statement psql and pg_psql's optional DBNAME.
pg_createdb A repdb
is "$(pg_sql A repdb 'select current_database()')" repdb "pg_createdb + connect"
pg_sql A repdb "create table t (id int primary key, v text); insert into t values (1, 'x'), (2, 'y')"
is "$(pg_psql A repdb -c 'select v from t order by id')" $'x\ny' "pg_psql with dbname"
is "$(pg_psql A -c "select count(*) from pg_database where datname = 'repdb'")" 1 \
	"pg_psql without dbname uses postgres"
fails pg_sql B repdb 'select 1'

# ---- stop / start / restart ------------------------------------------------
pid_b=$(pg_pid B)
ok pid_running "$pid_b"
pg_stop B
fails pid_running "$pid_b"
fails port_accepts "$PGPORT_B"
fails pg_sql B postgres 'select 1'
is "$(pg_sql A postgres 'select 1')" 1 "A unaffected by stopping B"

port_b=$PGPORT_B
pg_start B
is "$PGPORT_B" "$port_b" "restarted B keeps its port"
is "$(pg_sql B postgres 'select 1')" 1 "B answers after pg_start again"

pid_a=$(pg_pid A)
pg_restart A
ok test "$(pg_pid A)" != "$pid_a"
fails pid_running "$pid_a"
is "$(pg_sql A repdb 'select count(*) from t')" 2 "A keeps data across restart"

# ---- everything is gone after a test ----------------------------------------
sub=$TEST_TMP/sub_pg.sh
cat >"$sub" <<EOF
set -euo pipefail
. "$HERE/lib/common.sh"
. "$HERE/lib/pg.sh"
pg_start X
echo "SUBPID=\$(pg_pid X)"
echo "SUBDIR=\$(pg_datadir X)"
echo "SUBPORT=\$PGPORT_X"
done_testing
EOF
rc=0
subout=$(bash "$sub" 2>&1) || rc=$?
is "$rc" 0 "sub-test starting a cluster passes"
subpid=$(sed -n 's/^SUBPID=//p' <<<"$subout")
subdir=$(sed -n 's/^SUBDIR=//p' <<<"$subout")
subport=$(sed -n 's/^SUBPORT=//p' <<<"$subout")
like "$subpid" '^[0-9]+$' "sub-test reported its postmaster PID"
fails pid_running "$subpid"
fails test -e "$subdir"
fails test -e "$(dirname "$(dirname "$subdir")")"
fails test -e "/tmp/repctl-ports/$subport"
fails port_accepts "$subport"

# Same, but the sub-test fails: clusters still stopped, server log dumped.
# shellcheck disable=SC2016 # $(...) is for the sub-test to expand
printf '%s\n' "set -euo pipefail" ". \"$HERE/lib/common.sh\"" ". \"$HERE/lib/pg.sh\"" \
	"pg_start Y" 'echo "SUBPID=$(pg_pid Y)"' "fail deliberately" "done_testing" \
	>"$TEST_TMP/sub_pg_fail.sh"
rc=0
subout=$(bash "$TEST_TMP/sub_pg_fail.sh" 2>&1) || rc=$?
is "$rc" 1 "failing sub-test with a cluster exits 1"
subpid=$(sed -n 's/^SUBPID=//p' <<<"$subout")
like "$subpid" '^[0-9]+$' "failing sub-test reported its postmaster PID"
fails pid_running "$subpid"
like "$subout" '^# ---- last 40 lines of server log of cluster Y' "server log dumped on failure"
like "$subout" '^# .*database system is ready to accept connections' "log lines are '#'-prefixed"
rm -rf -- "$(sed -n 's/^# test files kept in //p' <<<"$subout")"

done_testing
