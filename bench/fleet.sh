# shellcheck shell=bash
# bench/fleet.sh - the fleet workload of the benchmark (issue 12, "Fleet
# scale"), sourced by bench/run.sh (it uses run.sh's say, rec, run_part,
# repctl_stop_dir, $PY, $BENCH, $MODE, $JSONL and the harness's pg_*).
#
# One primary, the node "hub", and N clients in a star, pairs through the
# hub as the archive guide sets them up: for every client cI the syncs
# hub_cI (hub:source, cI:target) and cI_hub (cI:source, hub:target), both
# conflict_strategy=bucardo_latest.  Every node is a database with its own
# conninfo; the clients are spread over FLEET_CLIENT_CLUSTERS local clusters
# (round robin), the hub has a cluster of its own and the metadata database
# another one.  Every cluster gets max_connections = FLEET_MAX_CONNECTIONS
# (400), so that a design with a process and connections per sync can be
# measured up to N = 100 rather than stop at PostgreSQL's default of 100.
#
# Per N (quick: 5; full: 10 25 50 100; FLEET_N="..." overrides): a fresh
# metadata database and fresh node databases (copies of a template holding
# a small Rails-like schema, bench/fleet.py), repctl install, add database
# and add all tables for every node, the 2N syncs, then bench/fleet.py
# measure: repctl start, connections, RSS, idle CPU, propagation to every
# client, catch-up of a client that was unreachable.  Then repctl stop and
# the databases are dropped.

FLEET_CLIENT_CLUSTERS=3
FLEET_MAX_CONNECTIONS=${FLEET_MAX_CONNECTIONS:-400}

fleet_sizes() {
	if [[ -n ${FLEET_N:-} ]]; then
		echo "$FLEET_N"
	elif [[ $MODE == quick ]]; then
		echo 5
	else
		echo 10 25 50 100
	fi
}

fleet_client_cluster() { # client number (1-based) -> its cluster
	echo "fleetc$((($1 - 1) % FLEET_CLIENT_CLUSTERS + 1))"
}

fleet_all_clusters() {
	local i
	echo fleetmeta fleethub
	for ((i = 1; i <= FLEET_CLIENT_CLUSTERS; i++)); do
		echo "fleetc$i"
	done
}

# The clusters belong to run.sh's shell (stopped at its exit).
fleet_clusters() {
	local c
	for c in $(fleet_all_clusters); do
		pg_start "$c"
		printf 'max_connections = %s\n' "$FLEET_MAX_CONNECTIONS" >>"$(pg_datadir "$c")/postgresql.conf"
		pg_restart "$c"
		if [[ $c != fleetmeta ]]; then
			pg_createdb "$c" fleet_tpl
			"$PY" "$BENCH/fleet.py" schema "$(pg_conninfo "$c" fleet_tpl)"
		fi
	done
	say "fleet clusters: $(for c in $(fleet_all_clusters); do printf '%s %s, ' "$c" "$(pg_port "$c")"; done)max_connections $FLEET_MAX_CONNECTIONS"
}

fleet_client_name() { printf 'c%03d' "$1"; }

# fleet_dbs_sql N CLUSTER VERB : one statement per node database of size N
# on CLUSTER (VERB create: copies of the template; drop)
fleet_dbs_sql() {
	local n=$1 cl=$2 verb=$3 i db
	[[ $cl != fleethub ]] || db=fleet${n}_hub
	for ((i = 0; i <= n; i++)); do
		if ((i > 0)); then
			[[ $(fleet_client_cluster "$i") == "$cl" ]] || continue
			db=fleet${n}_$(fleet_client_name "$i")
		elif [[ $cl != fleethub ]]; then
			continue
		fi
		if [[ $verb == create ]]; then
			# one psql for all of them; FILE_COPY is the faster copy of a small template
			echo "CREATE DATABASE $db TEMPLATE fleet_tpl STRATEGY FILE_COPY;"
		else
			echo "DROP DATABASE IF EXISTS $db WITH (FORCE);"
		fi
	done
}

# fleet_drop N : the databases of size N (the coordinator is stopped)
fleet_drop() {
	local n=$1 c
	for c in $(fleet_all_clusters); do
		[[ $c == fleetmeta ]] || fleet_dbs_sql "$n" "$c" drop | pg_psql "$c" postgres || true
	done
	pg_sql fleetmeta postgres "DROP DATABASE IF EXISTS fleet${n}_meta WITH (FORCE)" || true
}

# fleet_one N : set up a star of N clients, measure it, tear it down
fleet_one() {
	local n=$1 r=$REPCTL i c name db t nodes clusters
	local dir=$TEST_TMP/fleet-$n
	mkdir -p "$dir"
	export REPCTL_META REPCTL_STATE_DIR
	REPCTL_META=$(pg_conninfo fleetmeta "fleet${n}_meta")
	REPCTL_STATE_DIR=$dir/state
	unset REPCTL_CONFIG REPCTL_NODE
	nodes=$dir/nodes.tsv
	clusters=$dir/clusters.tsv
	t=$(date +%s)
	pg_createdb fleetmeta "fleet${n}_meta"
	for c in $(fleet_all_clusters); do
		[[ $c == fleetmeta ]] || fleet_dbs_sql "$n" "$c" create | pg_psql "$c" postgres
	done
	printf 'hub\tfleethub\t%s\n' "$(pg_conninfo fleethub "fleet${n}_hub")" >"$nodes"
	for ((i = 1; i <= n; i++)); do
		c=$(fleet_client_cluster "$i")
		name=$(fleet_client_name "$i")
		printf '%s\t%s\t%s\n' "$name" "$c" "$(pg_conninfo "$c" "fleet${n}_$name")" >>"$nodes"
	done
	: >"$clusters"
	for c in $(fleet_all_clusters); do
		printf '%s\t%s\t%s\n' "$c" "$(pg_conninfo "$c" postgres)" "$(pg_pid "$c")" >>"$clusters"
	done
	say "fleet n=$n: $((n + 1)) databases in $(($(date +%s) - t)) s"
	t=$(date +%s)
	$r install >/dev/null
	while IFS=$'\t' read -r name c db; do
		$r add database "$name" conn="$db" >/dev/null
		$r add all tables --herd=h --db="$name" >/dev/null
	done <"$nodes"
	for ((i = 1; i <= n; i++)); do
		name=$(fleet_client_name "$i")
		$r add sync "hub_$name" relgroup=h dbs="hub:source,$name:target" conflict_strategy=bucardo_latest >/dev/null
		$r add sync "${name}_hub" relgroup=h dbs="$name:source,hub:target" conflict_strategy=bucardo_latest >/dev/null
	done
	say "fleet n=$n: repctl configured ($((n + 1)) nodes, $((2 * n)) syncs) in $(($(date +%s) - t)) s"
	rec kind=meta part="fleet-$n-setup" seconds=$(($(date +%s) - t))
	"$PY" "$BENCH/fleet.py" measure --n "$n" --nodes "$nodes" --clusters "$clusters" \
		--meta-cluster fleetmeta --hub-cluster fleethub --meta-db "fleet${n}_meta" \
		--state-dir "$REPCTL_STATE_DIR" --repctl "$r" --scale "$MODE" \
		--max-connections "$FLEET_MAX_CONNECTIONS" --out "$JSONL"
	grep -E 'too many clients|remaining connection slots' "$REPCTL_STATE_DIR/repctl.log" 2>/dev/null |
		tail -n 3 | sed 's/^/  log: /' || true
}

fleet_main() {
	local n t
	fleet_clusters
	for n in $(fleet_sizes); do
		cleanup_push repctl_stop_dir "$TEST_TMP/fleet-$n/state"
		run_part "fleet-$n" fleet_one "$n"
		# also after a failed part: nothing of this size runs into the next
		t=$(date +%s)
		repctl_stop_dir "$TEST_TMP/fleet-$n/state"
		fleet_drop "$n" >/dev/null 2>&1
		say "fleet n=$n: stopped and dropped in $(($(date +%s) - t)) s"
	done
}
