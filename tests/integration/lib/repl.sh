# shellcheck shell=bash
# tests/integration/lib/repl.sh - shared helpers of the replication tests
# (t_repl_*.sh).  Source after common.sh, pg.sh and fixtures.sh (it sources
# fixtures.sh itself when needed).
#
#   REPL_SCHEMA_SQL           a Rails-like schema with every common column type
#                             (see below); the same on every node
#   repl_setup NODE...        start cluster "meta" (once) and one cluster per
#                             NODE (cluster name = node name), create database
#                             archive holding REPL_SCHEMA_SQL on each, export
#                             REPCTL_META / REPCTL_STATE_DIR, repctl install,
#                             add database NODE conn=..., add all tables
#                             --herd=$REPL_HERD --db=NODE; all asserted
#   repl_add_node NODE [CLUSTER [DB [HERD]]]
#                             the same for one node: cluster CLUSTER (default
#                             NODE; started when not yet), database DB
#                             (default archive), herd HERD (default
#                             $REPL_HERD); several nodes may share a cluster
#   repl_psql NODE ARGS...    pg_psql on NODE's cluster and database
#   repl_sql NODE SQL         run SQL in NODE's database (ON_ERROR_STOP)
#   repl_val NODE SQL         the same, for one value
#   repl_sums NODE            "table|rows|md5" per replicated table (every user
#                             table with a primary key), rows ordered by the
#                             primary key: equal output = equal tables
#   repl_same MSG NODE...     assert that every NODE has the first one's sums;
#                             on a difference print the differing tables' rows
#   repl_shadow_sums NODE     per shadow table: key count and md5 of every
#                             shadow row (vector, xid, origin, time, tombstone):
#                             equal before/after = the engine wrote nothing
#   repl_run SYNC             repctl run SYNC; sets RUN_RC RUN_OUT RUN_ERR RUN_I
#                             RUN_U RUN_D RUN_C (inserts, updates, deletes,
#                             conflicts; -1 when the summary line is missing)
#   repl_converge MAX SYNC... run every SYNC in turn, round after round, until a
#                             round where every run is good and reports
#                             I/U/D 0/0/0 and no conflict (0), or MAX rounds
#                             (1); REPL_ROUNDS = rounds used
#   repl_config TEXT          write TEXT to $TEST_TMP/repctl.conf and export
#                             REPCTL_CONFIG pointing at it
#   repl_start                repctl start, asserted; registers "repctl stop"
#                             as cleanup and the daemon log as failure dump;
#                             sanitizer reports of the daemon go to
#                             $TEST_TMP/san/ (checked by repl_no_daemon_san)
#   repl_no_daemon_san        assert that the daemon (or a status --json run by
#                             repl_status_json) wrote no ASan/UBSan report
#   repl_log                  print the daemon log ('#'-prefixed)
#   repl_status_json EXPR     print python EXPR evaluated on `repctl status
#                             --json` (as d); 1 when status fails; a
#                             sanitizer report on its stderr is a failed check
#   repl_seed                 REPL_SEED from $REPL_SEED or a fixed default,
#                             printed, and RANDOM seeded with it
#   repl_writers_start NODE...  one bounded background writer per NODE (it
#                             stops by itself after REPL_WRITER_MAX seconds,
#                             default 150): each iteration is one transaction
#                             on songs that inserts a new row in the writer's
#                             own id range (K*1000000+i, K = 1, 2, ... in the
#                             order writers are started), updates one of the
#                             shared rows 1..5 (plays + 1, updated_at) and,
#                             every 4th iteration, deletes its own row i-3;
#                             a failed transaction is not retried (the next
#                             iteration goes on), so writers survive a server
#                             going away
#   repl_writers_stop [NODE...]  stop those writers (default: all) and wait;
#                             then REPL_WROTE[NODE] = the rows of NODE's range
#                             its committed transactions left (inserted minus
#                             deleted), REPL_WBASE[NODE] = the range's base
#                             (rows base+1 .. base+999999), REPL_WTX[NODE] =
#                             committed transactions, REPL_WFAIL[NODE] = failed
#   repl_daemon_pids          pids of every live (non-zombie) process running
#                             this test's repctl binary whose environment
#                             mentions $TEST_TMP: coordinators, workers,
#                             orphaned workers, CLI commands of this test

if [[ -n ${_REPCTL_REPL_SH:-} ]]; then
	return 0
fi
_REPCTL_REPL_SH=1

if [[ -z ${_REPCTL_PG_SH:-} ]]; then
	echo "repl.sh: source common.sh and pg.sh first" >&2
	exit 2
fi
if [[ -z ${_REPCTL_FIXTURES_SH:-} ]]; then
	# shellcheck source-path=SCRIPTDIR
	. "$(dirname "${BASH_SOURCE[0]}")/fixtures.sh"
fi

REPL_DB=archive
REPL_HERD=${REPL_HERD:-h}
REPL_NODES=()

# The schema of a small Rails app, plus a table with every common type.
#   songs               bigint key, the usual created_at/updated_at
#   albums              uuid key
#   kitchen_sink        uuid, text, numeric(12,4), timestamptz, date, bytea,
#                       jsonb, json, int[], text[], an enum, boolean
#   playlist_items      composite primary key (playlist_id, position)
#   "Weird ""name"""    quotes in the table name, a column "B c"
#   tags                no updated_at (conflicts fall back to change time)
#   artists / artist_links   FK parent / child (ON DELETE CASCADE)
#   schema_migrations / ar_internal_metadata   as Rails creates them
REPL_SCHEMA_SQL=$(
	cat <<'SQL'
CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE TYPE public.mood AS ENUM ('sad', 'ok', 'happy', 'it''s "fine"');
CREATE TABLE public.songs (
    id         bigint PRIMARY KEY,
    title      text NOT NULL,
    plays      integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE public.albums (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name       text,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE public.kitchen_sink (
    id         bigint PRIMARY KEY,
    u          uuid,
    t          text,
    n          numeric(12,4),
    ts         timestamptz,
    d          date,
    b          bytea,
    jb         jsonb,
    j          json,
    ia         integer[],
    ta         text[],
    m          public.mood,
    flag       boolean,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE public.playlist_items (
    playlist_id bigint,
    position    integer,
    song_id     bigint,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (playlist_id, position)
);
CREATE TABLE public."Weird ""name""" (
    a          integer,
    b          text,
    "B c"      text,
    updated_at timestamptz,
    PRIMARY KEY (a, b)
);
CREATE TABLE public.tags (
    id   bigint PRIMARY KEY,
    name text
);
CREATE TABLE public.artists (
    id         bigint PRIMARY KEY,
    name       text,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE public.artist_links (
    id         bigint PRIMARY KEY,
    artist_id  bigint NOT NULL REFERENCES public.artists (id) ON DELETE CASCADE,
    url        text,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE public.schema_migrations (version varchar PRIMARY KEY);
CREATE TABLE public.ar_internal_metadata (
    key        varchar PRIMARY KEY,
    value      varchar,
    created_at timestamp(6) NOT NULL,
    updated_at timestamp(6) NOT NULL
);
SQL
)

declare -A REPL_CLUSTER=() REPL_DBNAME=()

_repl_cluster() { printf '%s' "${REPL_CLUSTER[$1]:-$1}"; }
_repl_db() { printf '%s' "${REPL_DBNAME[$1]:-$REPL_DB}"; }

repl_psql() {
	local n=$1
	shift
	pg_psql "$(_repl_cluster "$n")" "$(_repl_db "$n")" "$@"
}

repl_sql() {
	repl_psql "$1" -c "$2"
}

repl_val() {
	repl_psql "$1" -c "$2"
}

# repl_add_node NODE [CLUSTER [DB [HERD]]]
repl_add_node() {
	local n=$1 cluster=${2:-$1} db=${3:-$REPL_DB} herd=${4:-$REPL_HERD}
	REPL_CLUSTER[$n]=$cluster
	REPL_DBNAME[$n]=$db
	if [[ -z $(pg_port "$cluster") ]]; then
		pg_start "$cluster"
	fi
	pg_createdb "$cluster" "$db"
	pg_psql "$cluster" "$db" <<<"$REPL_SCHEMA_SQL"
	run_repctl add database "$n" conn="$(pg_conninfo "$cluster" "$db")"
	is "$RC" 0 "add database $n"
	[[ $RC == 0 ]] || diag "add database $n: $ERR"
	run_repctl add all tables --herd="$herd" --db="$n"
	is "$RC" 0 "add all tables --herd=$herd --db=$n"
	[[ $RC == 0 ]] || diag "add all tables $n: $ERR"
	REPL_NODES+=("$n")
}

repl_setup() {
	local n
	if [[ -z $(pg_port meta) ]]; then
		pg_start meta
	fi
	fx_env meta
	fx_install
	for n in "$@"; do
		repl_add_node "$n"
	done
}

# Every user table with a primary key: "table|rows|md5 of rows in key order".
_REPL_SUMS_SQL=$(
	cat <<-'SQL'
		SELECT format('SELECT %L, count(*), md5(coalesce(string_agg(t::text, %L ORDER BY %s), %L)) FROM %s t',
		              c.oid::regclass::text, '|',
		              (SELECT string_agg(format('t.%I', a.attname), ', ' ORDER BY k.ord)
		                 FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
		                 JOIN pg_catalog.pg_attribute a
		                   ON a.attrelid = c.oid AND a.attnum = k.attnum),
		              '', c.oid::regclass::text)
		  FROM pg_catalog.pg_class c
		  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		  JOIN pg_catalog.pg_index i ON i.indrelid = c.oid AND i.indisprimary
		 WHERE c.relkind = 'r' AND n.nspname <> 'repctl'
		   AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\_%'
		 ORDER BY c.oid::regclass::text \gexec
	SQL
)

repl_sums() {
	repl_psql "$1" <<<"$_REPL_SUMS_SQL"
}

_REPL_SHADOW_SQL=$(
	cat <<-'SQL'
		SELECT format('SELECT %L, count(*), md5(coalesce(string_agg(s::text, %L ORDER BY s::text), %L)) FROM repctl.%I s',
		              format('%I.%I', schema_name, table_name), '|', '', shadow)
		  FROM repctl.captured ORDER BY schema_name, table_name \gexec
	SQL
)

repl_shadow_sums() {
	repl_psql "$1" <<<"$_REPL_SHADOW_SQL"
}

# Rows of one table (text), key order, for diagnostics.
_repl_dump_table() {
	local node=$1 tbl=$2
	repl_psql "$node" -c "SELECT t::text FROM $tbl t ORDER BY t::text LIMIT 40" 2>&1 || true
}

# repl_same MSG NODE... : every node's sums equal the first's.
repl_same() {
	local msg=$1 first=$2 n a b d='' line tbl
	shift 2
	a=$(repl_sums "$first")
	for n in "$@"; do
		b=$(repl_sums "$n")
		if [[ $a == "$b" ]]; then
			_t_result 1 "$msg: $n = $first" "$(_t_where 1)"
			continue
		fi
		d=$(diff <(printf '%s\n' "$a") <(printf '%s\n' "$b") || true)
		d+=$'\n'"(< $first, > $n)"
		# show the rows of the differing tables
		while IFS= read -r line; do
			[[ $line == '<'* ]] || continue
			tbl=${line#< }
			tbl=${tbl%%|*}
			d+=$'\n'"-- $tbl on $first:"$'\n'"$(_repl_dump_table "$first" "$tbl")"
			d+=$'\n'"-- $tbl on $n:"$'\n'"$(_repl_dump_table "$n" "$tbl")"
		done <<<"$d"
		_t_result 0 "$msg: $n = $first" "$(_t_where 1)" "$d"
	done
}

# repl_run SYNC
# shellcheck disable=SC2034 # RUN_* are for the caller
repl_run() {
	local s=$1 re='I/U/D ([0-9]+)/([0-9]+)/([0-9]+), ([0-9]+) conflict'
	run_repctl run "$s"
	RUN_RC=$RC RUN_OUT=$OUT RUN_ERR=$ERR
	RUN_I=-1 RUN_U=-1 RUN_D=-1 RUN_C=-1
	if [[ $OUT =~ $re ]]; then
		RUN_I=${BASH_REMATCH[1]} RUN_U=${BASH_REMATCH[2]}
		RUN_D=${BASH_REMATCH[3]} RUN_C=${BASH_REMATCH[4]}
	fi
	printf '#   %s\n' "$OUT"
	# conflict decisions are one line each on stderr: count them, show the rest
	local nconf other
	nconf=$(grep -c '^repctl: conflict on ' <<<"$ERR" || true)
	other=$(grep -v '^repctl: conflict on ' <<<"$ERR" || true)
	((nconf == 0)) || printf '#   stderr: %d conflict line(s), e.g. %s\n' "$nconf" \
		"$(grep -m1 '^repctl: conflict on ' <<<"$ERR")"
	[[ -z $other ]] || printf '#   stderr: %s\n' "${other//$'\n'/ | }"
	return 0
}

# repl_converge MAX SYNC...
REPL_ROUNDS=0
repl_converge() {
	local max=$1 round s quiet
	shift
	for ((round = 1; round <= max; round++)); do
		quiet=1
		for s in "$@"; do
			repl_run "$s"
			if [[ $RUN_RC != 0 || "$RUN_I/$RUN_U/$RUN_D/$RUN_C" != 0/0/0/0 ]]; then
				quiet=0
			fi
		done
		# shellcheck disable=SC2034 # for the caller
		REPL_ROUNDS=$round
		if ((quiet)); then
			note "quiescent after $round round(s)"
			return 0
		fi
	done
	note "not quiescent after $max rounds"
	return 1
}

repl_config() {
	printf '%s\n' "$1" >"$TEST_TMP/repctl.conf"
	REPCTL_CONFIG=$TEST_TMP/repctl.conf
	export REPCTL_CONFIG
}

repl_log() {
	local f=$REPCTL_STATE_DIR/repctl.log
	if [[ -r $f ]]; then
		echo "# ---- daemon log $f (last 120 lines):"
		tail -n 120 -- "$f" | sed 's/^/# /'
	else
		echo "# (no daemon log at $f)"
	fi
}

_REPL_DAEMON_HOOKS=0
repl_start() {
	mkdir -p "$TEST_TMP/san"
	RC=0
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$TEST_TMP/san/daemon" \
		UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$TEST_TMP/san/daemon-ub" \
		run_repctl start
	is "$RC" 0 "repctl start"
	[[ $RC == 0 ]] || diag "start: $OUT $ERR"
	if ((_REPL_DAEMON_HOOKS == 0)); then
		_REPL_DAEMON_HOOKS=1
		cleanup_push "$REPCTL stop >/dev/null 2>&1 || true"
		on_failure_push repl_log
	fi
}

repl_no_daemon_san() {
	local f reports=''
	for f in "$TEST_TMP"/san/daemon*; do
		[[ -e $f ]] || continue
		reports+="== $f"$'\n'"$(head -n 60 -- "$f")"$'\n'
	done
	if [[ -z $reports ]]; then
		_t_result 1 "no sanitizer report from the daemon" "$(_t_where 1)"
	else
		_t_result 0 "no sanitizer report from the daemon" "$(_t_where 1)" "$reports"
	fi
}

repl_status_json() {
	local out err rc=0
	out=$("$REPCTL" status --json 2>"$TEST_TMP/.status.err") || rc=$?
	err=$(<"$TEST_TMP/.status.err")
	if [[ $err == *AddressSanitizer* || $err == *LeakSanitizer* || $err == *"runtime error:"* ]]; then
		# also kept for repl_no_daemon_san: this may run in a subshell
		mkdir -p "$TEST_TMP/san"
		printf '%s\n' "$err" >>"$TEST_TMP/san/daemon-cli-status"
		_t_result 0 "no sanitizer report from repctl status --json" "$(_t_where 1)" "$err"
	fi
	((rc == 0)) || return 1
	json_eval "$out" "$1"
}

repl_seed() {
	REPL_SEED=${REPL_SEED:-20240611}
	RANDOM=$REPL_SEED
	note "random seed: $REPL_SEED (rerun with REPL_SEED=$REPL_SEED)"
}

# ---- background writers ---------------------------------------------------------------------
declare -A REPL_WPID=() REPL_WROTE=() REPL_WBASE=() REPL_WTX=() REPL_WFAIL=()
_REPL_WRITER_K=0

# _repl_writer NODE BASE STOPFILE COUNTFILE MAXSECONDS (in the background)
_repl_writer() {
	local n=$1 base=$2 stopf=$3 countf=$4 max=$5 i=0 rows=0 tx=0 failed=0 sql end
	local -A done_=()
	end=$((SECONDS + max))
	trap - ERR
	set +e
	while [[ ! -e $stopf ]] && ((SECONDS < end)); do
		i=$((i + 1))
		sql="BEGIN; INSERT INTO songs (id, title) VALUES ($((base + i)), 'w $n $i');
		     UPDATE songs SET plays = plays + 1, updated_at = clock_timestamp() WHERE id = $((i % 5 + 1));"
		if ((i % 4 == 0)); then
			sql+=" DELETE FROM songs WHERE id = $((base + i - 3));"
		fi
		sql+=" COMMIT;"
		if repl_sql "$n" "$sql" >/dev/null 2>&1; then
			tx=$((tx + 1))
			done_[$i]=1
			rows=$((rows + 1))
			if ((i % 4 == 0)) && [[ -n ${done_[$((i - 3))]:-} ]]; then
				rows=$((rows - 1))
			fi
		else
			failed=$((failed + 1))
			sleep 0.2
		fi
		printf '%s %s %s\n' "$rows" "$tx" "$failed" >"$countf.tmp" && mv -f -- "$countf.tmp" "$countf"
		sleep 0.05
	done
}

repl_writers_start() {
	local n
	for n in "$@"; do
		_REPL_WRITER_K=$((_REPL_WRITER_K + 1))
		REPL_WBASE[$n]=$((_REPL_WRITER_K * 1000000))
		rm -f -- "$TEST_TMP/writer.$n.stop"
		printf '0 0 0\n' >"$TEST_TMP/writer.$n.count"
		_repl_writer "$n" "${REPL_WBASE[$n]}" "$TEST_TMP/writer.$n.stop" \
			"$TEST_TMP/writer.$n.count" "${REPL_WRITER_MAX:-150}" &
		REPL_WPID[$n]=$!
		cleanup_push "touch $TEST_TMP/writer.$n.stop; kill ${REPL_WPID[$n]} 2>/dev/null || true"
		note "writer on $n (pid ${REPL_WPID[$n]}): ids ${REPL_WBASE[$n]}+"
	done
}

# shellcheck disable=SC2120 # the nodes are optional
repl_writers_stop() {
	local n nodes=("$@") rows tx failed
	((${#nodes[@]} > 0)) || nodes=("${!REPL_WPID[@]}")
	for n in "${nodes[@]}"; do
		touch "$TEST_TMP/writer.$n.stop"
	done
	for n in "${nodes[@]}"; do
		[[ -n ${REPL_WPID[$n]:-} ]] || continue
		wait "${REPL_WPID[$n]}" 2>/dev/null || true
		read -r rows tx failed <"$TEST_TMP/writer.$n.count"
		# shellcheck disable=SC2034 # for the caller
		REPL_WROTE[$n]=$rows REPL_WTX[$n]=$tx REPL_WFAIL[$n]=$failed
		note "writer on $n: $tx transaction(s) committed, $failed failed, $rows row(s) left in its range"
		unset "REPL_WPID[$n]"
	done
}

# ---- processes of this test's repctl ------------------------------------------------------
repl_daemon_pids() {
	local want d p
	want=$(readlink -f -- "$REPCTL")
	# one find, not a readlink per process: this runs in wait_until loops
	while IFS= read -r d; do
		p=${d#/proc/}
		[[ $p =~ ^[0-9]+$ ]] || continue
		grep -qzF -- "$TEST_TMP" "$d/environ" 2>/dev/null || continue
		if pid_running "$p"; then
			echo "$p"
		fi
	done < <(find /proc -mindepth 2 -maxdepth 2 -name exe -lname "$want*" -printf '%h\n' 2>/dev/null || true)
	return 0
}
