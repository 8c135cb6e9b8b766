#!/usr/bin/env bash
# bench/run.sh - repctl against Bucardo and pglogical 2 (databases) and rsync
# and unison (files), side by side in one run on this machine, and repctl's coordinator
# on a fleet of N clients (bench/fleet.sh).  A benchmark, not a test: it
# reports figures and always exits 0 once it has run, even when a peer tool
# (or repctl) fails a workload; the failure is printed and kept in the
# results.
#
#   bash bench/run.sh [--quick|--full] [--only PARTS] [--tools LIST]
#
#   --quick        small sizes (CI: keeps the benchmark from rotting, <= 4 min)
#   --full         the sizes of docs/BENCHMARKS.md (default; ~30 min)
#   --only PARTS   comma list among db (databases), files, fleet (default: all)
#   --workloads L  the file part's workloads: main (F1-F6, P1, P2) and/or F7
#                  (library scale: 100,000 small files, 5,000 in a quick run);
#                  default main,F7.  `--only files --workloads F7` runs F7 alone
#   --tools LIST   comma list among repctl,bucardo,pglogical,rsync,unison
#                  (default: all; the fleet part is repctl's alone and runs
#                  when repctl is in; pglogical is skipped, with a line that
#                  says so, when postgresql-15-pglogical is not installed)
#
#   FLEET_N="10 25"  the fleet sizes (default: quick 5, full 10 25 50 100)
#   F7_FILES=20000   F7's file count (default: full 100000, quick 5000)
#   F7_COMPARE_REPCTL=PATH  F7 also runs its no-change and a 1% change with
#                    this other repctl binary on the same trees (before/after)
#   BENCH_SYNCHRONOUS_COMMIT=off  the database part's a, b and c with the
#                    harness's synchronous_commit (default on: see db_clusters)
#
# Results: one line per tool and workload on stdout, the raw measurements in
# bench/results/<UTC timestamp>-<mode>.json (and, for a full run of every
# part, bench/results/latest-full.json; a full run of some parts writes
# bench/results/latest-full-<parts>.json).  Work files live in a temporary directory
# that is removed at the end (KEEP_TMP=1 keeps it).  Everything listens on
# 127.0.0.1 only; every server and daemon started here is stopped by its PID.
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MODE=full
PARTS=db,files,fleet
ALL_TOOLS=repctl,bucardo,pglogical,rsync,unison
TOOLS=$ALL_TOOLS
FS_WORKLOADS=main,F7
while (($# > 0)); do
	case $1 in
	--quick) MODE=quick ;;
	--full) MODE=full ;;
	--only)
		PARTS=$2
		shift
		;;
	--tools)
		TOOLS=$2
		shift
		;;
	--workloads)
		FS_WORKLOADS=$2
		shift
		;;
	-h | --help)
		sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
		exit 0
		;;
	*)
		echo "bench/run.sh: unknown argument '$1' (see --help)" >&2
		exit 2
		;;
	esac
	shift
done

# The integration test harness: throw-away clusters and sshd on loopback,
# stopped by PID at exit.  Its ERR trap only records where a command failed.
# shellcheck source-path=SCRIPTDIR/../tests/integration/lib
. "$BENCH/../tests/integration/lib/common.sh"
# shellcheck source-path=SCRIPTDIR/../tests/integration/lib
. "$BENCH/../tests/integration/lib/pg.sh"
# shellcheck source-path=SCRIPTDIR/../tests/integration/lib
. "$BENCH/../tests/integration/lib/sshd.sh"
# shellcheck source-path=SCRIPTDIR
. "$BENCH/fleet.sh"

PY=/usr/bin/python3 # Debian's, which has python3-psycopg2 (bench/deps.sh)
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
JSONL=$TEST_TMP/results.jsonl
LOGS=$TEST_TMP/logs
mkdir -p "$LOGS" "$BENCH/results"
: >"$JSONL"
T_START=$(date +%s)

has_tool() { [[ ,$TOOLS, == *,$1,* ]]; }
has_part() { [[ ,$PARTS, == *,$1,* ]]; }
say() { printf '# %s  %s\n' "$(date -u +%H:%M:%S)" "$*"; }

# rec KEY=VALUE... : one JSON object into the results (numbers stay numbers)
rec() { "$PY" "$BENCH/report.py" add "$JSONL" "$@"; }

# run_part NAME FUNC ARGS... : FUNC in a subshell with set -e in force, its
# output in $LOGS/NAME.log (progress lines also on stderr); a failure is
# recorded as {tool, workload=setup, ok=false, error=last lines} and the run
# goes on.
run_part() {
	local name=$1 rc=0 tool=${1%%-*} layout=${1#*-} kind=db extra=()
	shift
	[[ $name != files* ]] || kind=files
	if [[ $name == fleet-* ]]; then # fleet-N
		kind=fleet tool=repctl layout=star extra=(n="${name#fleet-}")
	fi
	say "part $name: start"
	set +e
	(
		set -e
		"$@"
	) > >(tee "$LOGS/$name.log" | grep --line-buffered '^# ' >&2) 2>&1
	rc=$?
	set -e
	# let the tee'd log catch up
	sleep 0.2
	if ((rc != 0)); then
		local why
		why=$(grep -v '^# ' "$LOGS/$name.log" | tail -n 8 | tr '\n' ' ' | cut -c1-600)
		[[ -n $why ]] || why=$(tail -n 8 "$LOGS/$name.log" | tr '\n' ' ' | cut -c1-600)
		say "part $name FAILED (exit $rc): $why"
		rec kind="$kind" tool="$tool" layout="$layout" workload=setup ok=false "${extra[@]}" \
			error="part $name failed (exit $rc): $why"
	fi
	say "part $name: done ($rc)"
	return 0
}

machine_info() {
	local cpu mem
	cpu=$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n 1)
	mem=$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
	rec kind=meta mode="$MODE" stamp="$STAMP" host="$(hostname)" cpu="$cpu" cores="$(nproc)" \
		mem="$mem" kernel="$(uname -r)" os="$(. /etc/os-release && echo "$PRETTY_NAME")" \
		postgres="$("$PG_BIN/postgres" --version | awk '{print $3}')" \
		bucardo="$(bucardo --version 2>/dev/null | awk '{print $3}' || echo absent)" \
		pglogical="$(dpkg-query -W -f='${Version}' postgresql-15-pglogical 2>/dev/null || echo absent)" \
		rsync="$(rsync --version 2>/dev/null | awk 'NR==1 {print $3}' || echo absent)" \
		unison="$(unison -version 2>/dev/null | awk '{print $3}' || echo absent)" \
		openssh="$(ssh -V 2>&1 | awk '{print $1}' | tr -d ,)" \
		repctl="$("$REPCTL" version 2>/dev/null | head -n 1 || echo '?')" \
		repctl_commit="$(git -C "$BENCH/.." rev-parse --short HEAD 2>/dev/null || echo '?')" \
		repctl_dirty="$(git -C "$BENCH/.." status --porcelain -- src include sql 2>/dev/null | wc -l)" \
		load_at_start="$(cut -d' ' -f1-3 /proc/loadavg)"
}

# ================================================================ database --

# Nodes: meta (repctl's metadata and Bucardo's database `bucardo`), a and b
# (replicated), c (same schema, no trigger: the raw baseline).
#
# Server settings are the same for every tool: a, b and c always run with
# what logical decoding needs (wal_level = logical, track_commit_timestamp,
# slots, WAL senders, workers), whether pglogical is in the run or not, so
# that repctl's and Bucardo's figures do not depend on the tool list and C
# stays the same server as A without a replicator.  They also run with
# synchronous_commit = on (fsync stays off): with the harness's off, a WAL
# sender only sees a commit once the WAL writer flushes it, up to
# wal_writer_delay (200 ms) later, which would add up to 200 ms to every
# change pglogical decodes and nothing to the others
# (BENCH_SYNCHRONOUS_COMMIT=off keeps the harness's setting, to compare).
# Only the library itself (shared_preload_libraries = 'pglogical' and its
# conflict_resolution, in the included file pglogical.conf) is loaded on a
# and b around pglogical's part alone (pglogical_load): with pglogical 2.4.2
# on PostgreSQL 15 loaded,
# DROP DATABASE hangs for ever (its supervisor never accepts the
# ProcSignalBarrier; pglogical issues 399 and 418), which would stop the
# other tools' parts at their first database drop.
PGL_RUN=0
db_clusters() {
	local n conf
	if has_tool pglogical; then
		if pglogical_available; then
			PGL_RUN=1
		else
			say "pglogical: SKIPPED: postgresql-15-pglogical is not installed (bench/deps.sh installs it)"
			rec kind=meta pglogical_skipped="postgresql-15-pglogical is not installed"
		fi
	fi
	for n in meta a b c; do
		pg_start "$n"
		conf=$(pg_datadir "$n")/postgresql.conf
		# a full run gives the servers more cache than the test harness does
		# (the same for every tool); a quick run keeps the harness's settings
		if [[ $MODE == full ]]; then
			printf 'shared_buffers = 256MB\nmax_wal_size = 2GB\n' >>"$conf"
		fi
		if [[ $n != meta ]]; then
			printf '%s\n' '# ---- bench: logical decoding, for every tool' \
				"synchronous_commit = ${BENCH_SYNCHRONOUS_COMMIT:-on}" 'wal_level = logical' \
				'track_commit_timestamp = on' 'max_replication_slots = 10' 'max_wal_senders = 10' \
				'max_worker_processes = 16' "include_if_exists 'pglogical.conf'" >>"$conf"
		fi
		if [[ $MODE == full || $n != meta ]]; then
			pg_restart "$n"
		fi
	done
	for n in a b c; do
		pg_createdb "$n" bench_tpl
		"$PY" "$BENCH/dbload.py" init "$(pg_conninfo "$n" bench_tpl)" --scale "$MODE"
	done
	say "clusters: meta $(pg_port meta), a $(pg_port a), b $(pg_port b), c $(pg_port c); preload done"
}

# Fresh copies of the template on a, b and c for one part.
db_fresh() {
	local db=$1 n
	for n in a b c; do
		pg_sql "$n" postgres "CREATE DATABASE $db TEMPLATE bench_tpl"
	done
}

db_drop() {
	local n
	for n in a b c; do
		pg_sql "$n" postgres "DROP DATABASE $1" || true
	done
}

db_load() {
	local tool=$1 layout=$2 db=$3 pidcmd=$4 workloads=${5:-W4,W1,W2,W3,M}
	"$PY" "$BENCH/dbload.py" run --tool "$tool" --layout "$layout" --scale "$MODE" \
		--a "$(pg_conninfo a "$db")" --b "$(pg_conninfo b "$db")" --c "$(pg_conninfo c "$db")" \
		--out "$JSONL" --pidcmd "$pidcmd" --workloads "$workloads" \
		--server-pids "$(pg_pid meta) $(pg_pid a) $(pg_pid b)"
}

# The workloads of a part (TOOL LAYOUT), in order, W4 first on an idle
# system.  M (a 1M-row batch) runs for both layouts of repctl, whose target it
# is, and once for Bucardo (multi-source), which needs minutes for it; a quick
# run measures M in the multi-source layout only.
db_workloads() {
	if [[ $2 == pair && ($MODE == quick || $1 == bucardo) ]]; then
		echo W4,W1,W2,W3
	else
		echo W4,W1,W2,W3,M
	fi
}

db_probe() {
	local db=$1 lag
	lag=$("$PY" "$BENCH/dbload.py" probe --a "$(pg_conninfo a "$db")" --b "$(pg_conninfo b "$db")" --timeout 60)
	say "probe a -> b: ${lag} s"
	lag=$("$PY" "$BENCH/dbload.py" probe --a "$(pg_conninfo b "$db")" --b "$(pg_conninfo a "$db")" --timeout 60)
	say "probe b -> a: ${lag} s"
}

# ----------------------------------------------------------------- repctl --

repctl_pids() { # the coordinator and its workers
	local p
	p=$(cat "$1/repctl.pid" 2>/dev/null) || return 0
	[[ $p =~ ^[0-9]+$ ]] && pid_running "$p" || return 0
	echo "$p"
	ps -o pid= --ppid "$p" 2>/dev/null || true
}

pid_gone() { ! pid_running "$1"; }

repctl_stop_dir() { # state dir: stop its coordinator, by its PID
	local dir=$1 p
	p=$(cat "$dir/repctl.pid" 2>/dev/null) || return 0
	[[ $p =~ ^[0-9]+$ ]] || return 0
	REPCTL_STATE_DIR=$dir "$REPCTL" stop >/dev/null 2>&1 || true
	if ! wait_until 20 pid_gone "$p" && pid_running "$p"; then
		kill -TERM "$p" 2>/dev/null || true
	fi
}

db_repctl() {
	local layout=$1 db=bench_repctl_$1 r=$REPCTL
	db_fresh "$db"
	pg_createdb meta "repctl_$layout"
	export REPCTL_META REPCTL_STATE_DIR
	REPCTL_META=$(pg_conninfo meta "repctl_$layout")
	REPCTL_STATE_DIR=$TEST_TMP/repctl-$layout
	unset REPCTL_CONFIG REPCTL_NODE
	$r install
	$r add database nodea conn="$(pg_conninfo a "$db")"
	$r add database nodeb conn="$(pg_conninfo b "$db")"
	$r add all tables --herd=h --db=nodea
	$r add all tables --herd=h --db=nodeb
	if [[ $layout == multi ]]; then
		$r add sync s relgroup=h dbs=nodea:source,nodeb:source conflict_strategy=bucardo_latest
	else
		$r add sync a_to_b relgroup=h dbs=nodea:source,nodeb:target conflict_strategy=bucardo_latest
		$r add sync b_to_a relgroup=h dbs=nodeb:source,nodea:target conflict_strategy=bucardo_latest
	fi
	$r validate
	$r start
	db_probe "$db"
	db_load repctl "$layout" "$db" "$(declare -f repctl_pids pid_running); repctl_pids $REPCTL_STATE_DIR" \
		"$(db_workloads repctl "$layout")"
	repctl_stop_dir "$REPCTL_STATE_DIR"
	tail -n 5 "$REPCTL_STATE_DIR/repctl.log" 2>/dev/null | sed 's/^/  log: /' || true
	db_drop "$db"
}

# ---------------------------------------------------------------- Bucardo --

# Bucardo lower-cases most of its configuration values (piddir included), so
# its directory must have a lower-case path: not under $TEST_TMP.
BUC=/tmp/repctl-bench-bucardo-$$

bucardo_cmd() {
	(cd "$BUC" && HOME=$BUC/home bucardo --no-bucardorc --dbhost=127.0.0.1 --dbport="$(pg_port meta)" \
		--dbuser=bucardo --dbname=bucardo "$@")
}

bucardo_pids() {
	cat "$1"/pid/*.pid 2>/dev/null | grep -E '^[0-9]+$' | sort -u || true
}

bucardo_stop() {
	local p pids
	[[ -d $BUC/pid ]] || return 0
	pids=$(bucardo_pids "$BUC")
	[[ -n $pids ]] || return 0
	bucardo_cmd stop >/dev/null 2>&1 || true
	for p in $pids; do
		if ! wait_until 30 pid_gone "$p" && pid_running "$p"; then
			kill -TERM "$p" 2>/dev/null || true
		fi
	done
	rm -f "$BUC"/pid/*.pid "$BUC"/pid/fullstopbucardo
}

bucardo_install() {
	[[ ! -e $BUC/installed ]] || return 0
	if ! command -v bucardo >/dev/null; then
		echo "bucardo is not installed (bench/deps.sh installs Debian's bucardo 5.6)"
		return 1
	fi
	mkdir -p "$BUC"/{pid,log,home}
	(cd "$BUC" && HOME=$BUC/home bucardo --no-bucardorc install --batch --dbhost=127.0.0.1 \
		--dbport="$(pg_port meta)" --dbuser=postgres --dbname=postgres --piddir="$BUC/pid")
	bucardo_cmd set reason_file="$BUC/log/bucardo.restart.reason.txt" \
		log_conflict_file="$BUC/log/bucardo_conflict.log"
	touch "$BUC/installed"
}

db_bucardo() {
	local layout=$1 db=bench_bucardo_$1 pa pb
	db_fresh "$db"
	bucardo_install
	pa=$(pg_port a) pb=$(pg_port b)
	bucardo_cmd add db "${layout}_a" dbname="$db" host=127.0.0.1 port="$pa" user=postgres
	bucardo_cmd add db "${layout}_b" dbname="$db" host=127.0.0.1 port="$pb" user=postgres
	bucardo_cmd add all tables db="${layout}_a" relgroup="h_$layout"
	if [[ $layout == multi ]]; then
		bucardo_cmd add sync "${layout}_s" relgroup="h_$layout" \
			dbs="${layout}_a:source,${layout}_b:source" conflict_strategy=bucardo_latest
	else
		bucardo_cmd add sync "${layout}_ab" relgroup="h_$layout" \
			dbs="${layout}_a:source,${layout}_b:target" conflict_strategy=bucardo_latest
		bucardo_cmd add sync "${layout}_ba" relgroup="h_$layout" \
			dbs="${layout}_b:source,${layout}_a:target" conflict_strategy=bucardo_latest
	fi
	bucardo_cmd start --logdest="$BUC/log"
	db_probe "$db"
	db_load bucardo "$layout" "$db" "cat $BUC/pid/*.pid 2>/dev/null | grep -E '^[0-9]+\$' | sort -u" \
		"$(db_workloads bucardo "$layout")"
	bucardo_cmd status || true
	bucardo_stop
	# leave nothing of this layout running in the next one
	local s
	for s in $(bucardo_cmd list syncs 2>/dev/null | sed -n 's/^Sync "\([^"]*\)".*/\1/p'); do
		bucardo_cmd remove sync "$s" >/dev/null || true
	done
	grep -E 'FATAL|ERROR|Warning' "$BUC/log/log.bucardo" 2>/dev/null | tail -n 5 | sed 's/^/  log: /' || true
	db_drop "$db"
}

# --------------------------------------------------------------- pglogical --

# pglogical 2 (Debian's postgresql-15-pglogical), set up as its documentation
# does two-way replication: a node and the default replication set (every
# table of public) on a and b, and a subscription each way with
# forward_origins = '{}' (no loop) and no initial copy (both nodes start from
# the same template); conflicts: pglogical.conflict_resolution =
# last_update_wins (pglogical_load), which needs track_commit_timestamp.  It has
# one layout, bidirectional: it runs as "multi" only.

# pglogical_load on|off: load the library on a and b (or not) and restart them
pglogical_load() {
	local n f
	for n in a b; do
		f=$(pg_datadir "$n")/pglogical.conf
		if [[ $1 == on ]]; then
			printf '%s\n' "shared_preload_libraries = 'pglogical'" \
				"pglogical.conflict_resolution = 'last_update_wins'" >"$f"
		else
			[[ -e $f ]] || continue
			rm -f -- "$f"
		fi
		pg_restart "$n"
	done
}

pglogical_available() {
	local lib share
	lib=$("$PG_BIN/pg_config" --pkglibdir 2>/dev/null) || lib=${PG_BIN%/bin}/lib
	share=$("$PG_BIN/pg_config" --sharedir 2>/dev/null) || share=/usr/share/postgresql/15
	[[ -e $lib/pglogical.so && -e $share/extension/pglogical.control ]]
}

# its processes on a and b: the workers (supervisor, a manager per database,
# an apply per subscription) and the WAL senders that decode for them; the
# harness's servers serve no other replication connection
pglogical_pidcmd() {
	local pm pms=""
	for pm in "$(pg_pid a)" "$(pg_pid b)"; do
		[[ $pm =~ ^[0-9]+$ ]] && pms+=" $pm"
	done
	# (by the process title's first word: a client backend's title holds
	# its database's name, which here contains "pglogical")
	echo "for pm in$pms; do ps -o pid=,args= --ppid \$pm; done |" \
		"awk '\$2 == \"postgres:\" && (\$3 == \"pglogical\" || \$3 == \"walsender\") {print \$1}'"
}

pglogical_replicating() { # DB: both subscriptions report 'replicating'
	local n s
	for n in a b; do
		s=$(pg_sql "$n" "$1" "SELECT string_agg(status, ',') FROM pglogical.show_subscription_status()")
		[[ $s == replicating ]] || return 1
	done
}

db_pglogical() {
	local layout=$1 db=bench_pglogical_$1 n from
	db_fresh "$db"
	for n in a b; do
		pg_sql "$n" "$db" "CREATE EXTENSION pglogical"
		pg_sql "$n" "$db" "SELECT pglogical.create_node(node_name := 'node_$n', dsn := '$(pg_conninfo "$n" "$db")')"
		pg_sql "$n" "$db" "SELECT pglogical.replication_set_add_all_tables('default', ARRAY['public'])"
	done
	for n in a b; do
		from=b
		[[ $n == b ]] && from=a
		pg_sql "$n" "$db" "SELECT pglogical.create_subscription(subscription_name := 'sub_${n}_from_$from',
			provider_dsn := '$(pg_conninfo "$from" "$db")', replication_sets := ARRAY['default'],
			synchronize_structure := false, synchronize_data := false, forward_origins := '{}')"
	done
	if ! wait_until 60 pglogical_replicating "$db"; then
		for n in a b; do
			echo "$n: $(pg_sql "$n" "$db" "SELECT string_agg(subscription_name || '=' || status, ' ')
				FROM pglogical.show_subscription_status()")"
		done
		echo "pglogical: the subscriptions are not both 'replicating' after 60 s"
		return 1
	fi
	say "pglogical $(pg_sql a "$db" "SELECT pglogical.pglogical_version()"): both subscriptions replicating," \
		"conflict_resolution $(pg_sql a "$db" "SHOW pglogical.conflict_resolution")"
	db_probe "$db"
	db_load pglogical "$layout" "$db" "$(pglogical_pidcmd)" "$(db_workloads pglogical "$layout")"
	for n in a b; do
		pg_sql "$n" "$db" "SELECT subscription_name, status FROM pglogical.show_subscription_status()" |
			sed "s/^/  $n: /"
	done
	say "pglogical processes at the end: $(bash -c "$(pglogical_pidcmd)" | xargs -r ps -o args= -p | sed 's/^postgres: //' | sort | uniq -c | tr -s ' \n' ' ')"
	say "pglogical: server log lines with CONFLICT on a and b: $({ grep -h 'CONFLICT' "$(pg_logfile a)" "$(pg_logfile b)" 2>/dev/null || true; } | wc -l)"
}

# Drop the subscriptions (and with them their slots on the providers and
# their origins), the nodes and the extension; make sure no slot or origin of
# pglogical is left on a or b; unload the library (restart) and drop the
# database.  Idempotent; runs in db_main's shell after the part, whether it
# failed or not.
pglogical_teardown() {
	local db=$1 n s
	for n in a b; do
		if [[ -n $(pg_sql "$n" postgres "SELECT 1 FROM pg_database WHERE datname = '$db'") ]] &&
			[[ -n $(pg_sql "$n" "$db" "SELECT 1 FROM pg_extension WHERE extname = 'pglogical'") ]]; then
			for s in $(pg_sql "$n" "$db" "SELECT sub_name FROM pglogical.subscription"); do
				pg_sql "$n" "$db" "SELECT pglogical.drop_subscription('$s', true)" >/dev/null || true
			done
		fi
	done
	for n in a b; do
		if [[ -n $(pg_sql "$n" postgres "SELECT 1 FROM pg_database WHERE datname = '$db'") ]]; then
			pg_sql "$n" "$db" "SELECT pglogical.drop_node('node_$n', true)" >/dev/null 2>&1 || true
			pg_sql "$n" "$db" "DROP EXTENSION IF EXISTS pglogical CASCADE" || true
		fi
		pg_sql "$n" postgres "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
			WHERE database = '$db' AND NOT active" >/dev/null || true
		pg_sql "$n" postgres "SELECT pg_replication_origin_drop(roname) FROM pg_replication_origin
			WHERE roname LIKE 'pgl_%'" >/dev/null || true
		s=$(pg_sql "$n" postgres "SELECT count(*) FROM pg_replication_slots")
		[[ $s == 0 ]] || say "pglogical teardown: $s replication slot(s) left on $n"
	done
	pglogical_load off
	for n in a b c; do
		pg_sql "$n" postgres "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
	done
}

db_main() {
	local layout
	cleanup_push rm -rf -- "$BUC"
	cleanup_push bucardo_stop
	db_clusters # the clusters belong to this shell: they are stopped at its exit
	for layout in multi pair; do
		cleanup_push repctl_stop_dir "$TEST_TMP/repctl-$layout"
		if has_tool repctl; then run_part "repctl-$layout" db_repctl "$layout"; fi
		if has_tool bucardo; then run_part "bucardo-$layout" db_bucardo "$layout"; fi
		# pglogical has no one-way pair that matches Bucardo's: multi only
		# (the restarts in db_main's shell: it keeps the postmasters' PIDs)
		if ((PGL_RUN)) && [[ $layout == multi ]]; then
			pglogical_load on || say "pglogical: loading the library failed"
			run_part "pglogical-$layout" db_pglogical "$layout"
			pglogical_teardown "bench_pglogical_$layout" || say "pglogical teardown failed"
		fi
	done
}

# =================================================================== files --

# The servers (sshd, the metadata cluster) belong to this shell; fs_repctl
# and fsbench.py run in a part.
fs_servers() {
	local key
	sshd_start fsn
	pg_start fsmeta
	mkdir -p "$TEST_TMP/fs/ssh"
	# OpenSSH client key for rsync and unison
	key=$TEST_TMP/fs/ssh/id_ed25519
	ssh-keygen -q -t ed25519 -N '' -C repctl-bench -f "$key"
	sshd_authorize fsn "$(cat "$key.pub")"
	printf '[127.0.0.1]:%s %s\n' "$(sshd_port fsn)" \
		"$(cut -d' ' -f1,2 "$(sshd_dir fsn)/ssh_host_ed25519_key.pub")" >"$TEST_TMP/fs/ssh/known_hosts"
	pg_createdb fsmeta cavadb
	pg_createdb fsmeta jukedb
}

fs_main() {
	local r=$REPCTL
	# repctl: metadata, nodes cava (local) and juke (over the sshd), its key
	export REPCTL_META REPCTL_STATE_DIR REPCTL_NODE=cava
	REPCTL_META=$(pg_conninfo fsmeta postgres)
	REPCTL_STATE_DIR=$TEST_TMP/fs/repctl-state
	unset REPCTL_CONFIG
	if has_tool repctl; then
		$r install >/dev/null
		$r add database cava conn="$(pg_conninfo fsmeta cavadb)" >/dev/null
		$r add database juke conn="$(pg_conninfo fsmeta jukedb)" \
			ssh="$SSHD_USER@127.0.0.1:$(sshd_port fsn)" agent="$r" >/dev/null
		$r keygen >/dev/null
		sshd_authorize fsn "$(cat "$REPCTL_STATE_DIR/ssh/id_ed25519.pub")"
		$r trust juke --fingerprint="$(sshd_hostkey_fp fsn)" >/dev/null
	fi
	"$PY" "$BENCH/fsbench.py" --scale "$MODE" --tools "$TOOLS" --root "$TEST_TMP/fs" \
		--port "$(sshd_port fsn)" --user "$SSHD_USER" --key "$TEST_TMP/fs/ssh/id_ed25519" \
		--known-hosts "$TEST_TMP/fs/ssh/known_hosts" --sshd-log "$(sshd_logfile fsn)" \
		--repctl "$r" --out "$JSONL" --sshd-pid "$(sshd_pid fsn)" --workloads "$FS_WORKLOADS" \
		--f7-files "${F7_FILES:-0}" --compare-repctl "${F7_COMPARE_REPCTL:-}"
}

# ==================================================================== main --

say "repctl benchmark, mode $MODE, parts $PARTS, tools $TOOLS (work dir $TEST_TMP)"
if [[ ! -x $REPCTL ]]; then
	echo "bench/run.sh: $REPCTL not found: run make first" >&2
	exit 1
fi
machine_info
if has_part db; then
	t=$(date +%s)
	db_main
	rec kind=meta part=db seconds=$(($(date +%s) - t)) db_synchronous_commit="${BENCH_SYNCHRONOUS_COMMIT:-on}"
fi
if has_part files; then
	t=$(date +%s)
	fs_servers
	run_part files-all fs_main
	rec kind=meta part=files seconds=$(($(date +%s) - t))
fi
if has_part fleet && has_tool repctl; then
	t=$(date +%s)
	fleet_main
	rec kind=meta part=fleet seconds=$(($(date +%s) - t))
fi
rec kind=meta part=total seconds=$(($(date +%s) - T_START)) load_at_end="$(cut -d' ' -f1-3 /proc/loadavg)"
out=$BENCH/results/$STAMP-$MODE.json
"$PY" "$BENCH/report.py" summary "$JSONL" --json "$out"
if [[ $MODE == full ]]; then
	# a partial run must not replace the figures of the parts it did not run
	if [[ $PARTS == db,files,fleet && $TOOLS == "$ALL_TOOLS" && $FS_WORKLOADS == main,F7 ]]; then
		cp "$out" "$BENCH/results/latest-full.json"
	else
		suffix=${PARTS//,/-}
		[[ $FS_WORKLOADS == main,F7 ]] || suffix+=-${FS_WORKLOADS//,/-}
		cp "$out" "$BENCH/results/latest-full-$suffix.json"
	fi
fi
say "results: $out ($(($(date +%s) - T_START)) s in all)"
exit 0
