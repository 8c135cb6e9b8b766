# shellcheck shell=bash
# tests/integration/lib/pg.sh - throw-away PostgreSQL 15 clusters for
# integration tests.  Source after common.sh.
#
#   pg_start NAME             initdb (first time) + start cluster NAME on a free
#                             127.0.0.1 port; sets PGPORT_<NAME>, CONNINFO_<NAME>
#   pg_stop NAME              fast stop, wait
#   pg_restart NAME           fast restart, wait
#   pg_conninfo NAME [DB]     echo "host=127.0.0.1 port=P user=postgres dbname=DB"
#   pg_psql NAME [DB] ARGS... psql -X -A -t -q -v ON_ERROR_STOP=1 over TCP
#   pg_sql NAME DB SQL        pg_psql NAME DB -c SQL
#   pg_createdb NAME DB       CREATE DATABASE
#   pg_datadir NAME / pg_pid NAME / pg_port NAME / pg_logfile NAME
#
# NAME must match [A-Za-z0-9_]+.  Data dir: $TEST_TMP/pg/NAME, server log:
# $TEST_TMP/pg/NAME/server.log.  Every started cluster is stopped at EXIT
# (immediate stop, then kill -9 of exactly the recorded postmaster PID).
# When root, the servers run as the unprivileged user "repctltest" (initdb
# refuses to run as root).  Port locks live in /tmp/repctl-ports/PORT.

if [[ -n ${_REPCTL_PG_SH:-} ]]; then
	return 0
fi
_REPCTL_PG_SH=1

if [[ -z ${_REPCTL_COMMON_SH:-} ]]; then
	echo "pg.sh: source common.sh first" >&2
	exit 2
fi

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PG_PORT_LOCK_DIR=/tmp/repctl-ports

if ((EUID == 0)); then
	PG_OS_USER=repctltest
else
	PG_OS_USER=$(id -un)
fi

declare -A _PG_PORT=() _PG_PID=() _PG_LOCK=() _PG_STARTED_ONCE=()
_PG_NAMES=()

# ------------------------------------------------------------- internals --

_pg_check_name() {
	if [[ ! ${1:-} =~ ^[A-Za-z0-9_]+$ ]]; then
		echo "pg.sh: invalid cluster name '${1:-}'" >&2
		return 2
	fi
}

_pg_ensure_user() {
	((EUID == 0)) || return 0
	id -u "$PG_OS_USER" >/dev/null 2>&1 && return 0
	mkdir -p "$PG_PORT_LOCK_DIR"
	chmod 1777 "$PG_PORT_LOCK_DIR" 2>/dev/null || true
	# Serialize against parallel tests creating the same user.
	# shellcheck disable=SC2016 # $1 is expanded by the inner sh
	flock "$PG_PORT_LOCK_DIR" sh -c '
		id -u "$1" >/dev/null 2>&1 ||
		useradd --system --no-create-home --shell /usr/sbin/nologin "$1"
	' sh "$PG_OS_USER"
}

# Run a command as the cluster owner, from a directory it can enter.
_pg_as_user() {
	if ((EUID == 0)); then
		(cd / && runuser -u "$PG_OS_USER" -- "$@")
	else
		(cd / && "$@")
	fi
}

_pg_pid_alive() { pid_running "$1"; }

# pg_ctl stop returns once postmaster.pid is gone, which the postmaster
# removes just before it exits: wait for the process itself.
_pg_wait_pid_gone() {
	local pid=$1 i
	for ((i = 0; i < ${2:-100}; i++)); do
		_pg_pid_alive "$pid" || return 0
		sleep 0.1
	done
	return 1
}

_pg_pid_is_postgres() {
	local pid=$1 comm=''
	comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
	[[ $comm == postgres* ]]
}

_pg_port_free() {
	local port=$1
	if command -v ss >/dev/null 2>&1; then
		[[ -z $(ss -Hltn "sport = :$port" 2>/dev/null) ]] || return 1
	fi
	# Belt and braces: nothing must accept a connection on 127.0.0.1:port.
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
		return 1
	fi
	return 0
}

# Pick a free port in 20000-60000, avoiding the kernel's ephemeral range
# (outgoing connections could grab it between our check and bind) when that
# leaves anything, and take /tmp/repctl-ports/PORT.  Sets _PG_NEWPORT.
_pg_pick_port() {
	local lo=20000 hi=60000 elo=0 ehi=-1 port tries
	if [[ -r /proc/sys/net/ipv4/ip_local_port_range ]]; then
		read -r elo ehi </proc/sys/net/ipv4/ip_local_port_range || true
	fi
	if ((elo <= lo + 1000 && ehi >= hi)); then
		elo=0 ehi=-1 # ephemeral range covers everything: ignore it
	fi
	mkdir -p "$PG_PORT_LOCK_DIR" 2>/dev/null || true
	chmod 1777 "$PG_PORT_LOCK_DIR" 2>/dev/null || true
	for ((tries = 0; tries < 500; tries++)); do
		port=$((lo + (RANDOM * 32768 + RANDOM) % (hi - lo + 1)))
		if ((port >= elo && port <= ehi)); then
			continue
		fi
		mkdir "$PG_PORT_LOCK_DIR/$port" 2>/dev/null || continue
		echo "$$" >"$PG_PORT_LOCK_DIR/$port/pid" 2>/dev/null || true
		if _pg_port_free "$port"; then
			_PG_NEWPORT=$port
			return 0
		fi
		rm -rf -- "${PG_PORT_LOCK_DIR:?}/$port"
	done
	echo "pg.sh: could not find a free port" >&2
	return 1
}

_pg_release_port() {
	local name=$1
	if [[ -n ${_PG_LOCK[$name]:-} ]]; then
		rm -rf -- "${_PG_LOCK[$name]}"
		_PG_LOCK[$name]=''
	fi
}

_pg_read_pid() {
	local dd=$1 pid=''
	if [[ -r $dd/postmaster.pid ]]; then
		read -r pid <"$dd/postmaster.pid" || true
	fi
	[[ $pid =~ ^[0-9]+$ ]] && echo "$pid"
	return 0
}

_pg_set_vars() {
	local name=$1 port=$2
	printf -v "PGPORT_$name" '%s' "$port"
	printf -v "CONNINFO_$name" 'host=127.0.0.1 port=%s user=postgres dbname=postgres' "$port"
}

# Registered with cleanup_push for every cluster: stop by PID, no matter what.
_pg_cleanup() {
	local name=$1 dd pid
	dd=$(pg_datadir "$name")
	pid=${_PG_PID[$name]:-}
	[[ -n $pid ]] || pid=$(_pg_read_pid "$dd")
	if _pg_pid_alive "$pid"; then
		_pg_as_user "$PG_BIN/pg_ctl" -D "$dd" -m immediate -w -t 10 stop \
			>/dev/null 2>&1 || true
		_pg_wait_pid_gone "$pid" 100 || true
		if _pg_pid_alive "$pid" && _pg_pid_is_postgres "$pid"; then
			echo "# pg.sh: postmaster $pid of $name still alive after 10 s; kill -9"
			kill -9 "$pid" 2>/dev/null || true
		fi
	fi
	_PG_PID[$name]=''
	_pg_release_port "$name"
}

_pg_dump_logs() {
	local name log
	for name in "${_PG_NAMES[@]}"; do
		log=$(pg_logfile "$name")
		[[ -r $log ]] || continue
		echo "# ---- last 40 lines of server log of cluster $name ($log):"
		tail -n 40 -- "$log" | sed 's/^/# /'
	done
}

_pg_initdb() {
	local name=$1 dd
	dd=$(pg_datadir "$name")
	mkdir -p "$TEST_TMP/pg"
	chmod 755 "$TEST_TMP/pg"
	local loc
	for loc in C.UTF-8 C; do
		rm -rf -- "$dd"
		mkdir -m 700 "$dd"
		if ((EUID == 0)); then
			chown "$PG_OS_USER:" "$dd"
		fi
		if _pg_as_user "$PG_BIN/initdb" -D "$dd" -A trust --nosync -U postgres \
			-E UTF8 --locale="$loc" >"$TEST_TMP/pg/$name.initdb.log" 2>&1; then
			return 0
		fi
	done
	echo "pg.sh: initdb of $name failed:" >&2
	sed 's/^/# /' "$TEST_TMP/pg/$name.initdb.log" >&2
	return 1
}

_pg_write_conf() {
	local name=$1 port=$2 dd sockdir
	dd=$(pg_datadir "$name")
	sockdir=$dd
	# sun_path is 108 bytes; fall back to TCP only if the path is too long.
	if ((${#dd} + 20 > 107)); then
		sockdir=''
	fi
	# Appended settings override the defaults written by initdb.
	cat >>"$dd/postgresql.conf" <<-EOF

		# ---- repctl test harness ----
		listen_addresses = '127.0.0.1'
		port = $port
		unix_socket_directories = '$sockdir'
		# throw-away test clusters; durability is not under test
		fsync = off
		synchronous_commit = off
		full_page_writes = off
		max_connections = 100
		max_prepared_transactions = 0
		shared_buffers = 32MB
		logging_collector = off
		log_line_prefix = '%m [%p] %q%u@%d '
	EOF
}

# ------------------------------------------------------------------- API --

pg_datadir() { echo "$TEST_TMP/pg/$1"; }
pg_logfile() { echo "$TEST_TMP/pg/$1/server.log"; }
pg_port() { echo "${_PG_PORT[$1]:-}"; }
pg_pid() { echo "${_PG_PID[$1]:-}"; }

pg_conninfo() {
	local name=$1 db=${2:-postgres} port
	port=${_PG_PORT[$name]:-}
	if [[ -z $port ]]; then
		echo "pg_conninfo: unknown cluster '$name'" >&2
		return 1
	fi
	echo "host=127.0.0.1 port=$port user=postgres dbname=$db"
}

pg_start() {
	local name=$1 dd log port attempt rc pid
	_pg_check_name "$name"
	dd=$(pg_datadir "$name")
	log=$(pg_logfile "$name")
	if [[ ! -x $PG_BIN/initdb ]]; then
		echo "pg.sh: $PG_BIN/initdb not found (set PG_BIN)" >&2
		return 1
	fi

	if [[ -z ${_PG_STARTED_ONCE[$name]:-} ]]; then
		_pg_ensure_user
		if ((EUID == 0)) && ! runuser -u "$PG_OS_USER" -- test -x "$TEST_TMP"; then
			echo "pg.sh: $PG_OS_USER cannot enter $TEST_TMP; use a TMPDIR whose parents are world-searchable" >&2
			return 1
		fi
		_pg_initdb "$name"
		_PG_STARTED_ONCE[$name]=1
		_PG_NAMES+=("$name")
		if ((${#_PG_NAMES[@]} == 1)); then
			on_failure_push _pg_dump_logs
		fi
		cleanup_push _pg_cleanup "$name"
	fi

	for ((attempt = 1; attempt <= 3; attempt++)); do
		port=${_PG_PORT[$name]:-}
		if [[ -z $port || -z ${_PG_LOCK[$name]:-} ]]; then
			_pg_pick_port
			port=$_PG_NEWPORT
			_PG_PORT[$name]=$port
			_PG_LOCK[$name]=$PG_PORT_LOCK_DIR/$port
			_pg_write_conf "$name" "$port"
		fi
		rc=0
		_pg_as_user "$PG_BIN/pg_ctl" -w -t 60 -D "$dd" -l "$log" start \
			>"$TEST_TMP/pg/$name.pg_ctl.log" 2>&1 || rc=$?
		pid=$(_pg_read_pid "$dd")
		_PG_PID[$name]=$pid
		if ((rc == 0)) && [[ -n $pid ]]; then
			_pg_set_vars "$name" "$port"
			return 0
		fi
		# Lost a race for the port?  Stop whatever is left and try another.
		if grep -q 'could not bind\|could not create any TCP/IP sockets' "$log" 2>/dev/null; then
			_pg_cleanup "$name"
			_PG_PORT[$name]=''
			continue
		fi
		break
	done
	echo "pg.sh: starting cluster $name failed (pg_ctl exit $rc):" >&2
	sed 's/^/# /' "$TEST_TMP/pg/$name.pg_ctl.log" >&2
	[[ -r $log ]] && tail -n 40 "$log" | sed 's/^/# /' >&2
	return 1
}

pg_stop() {
	local name=$1 dd pid
	_pg_check_name "$name"
	dd=$(pg_datadir "$name")
	pid=${_PG_PID[$name]:-}
	_pg_as_user "$PG_BIN/pg_ctl" -D "$dd" -m fast -w -t 60 stop >/dev/null
	if [[ -n $pid ]] && ! _pg_wait_pid_gone "$pid" 100; then
		echo "pg_stop: postmaster $pid of $name did not exit" >&2
		return 1
	fi
	_PG_PID[$name]=''
	# Keep the port lock: pg_start NAME will reuse the same port.
}

pg_restart() {
	local name=$1 dd pid
	_pg_check_name "$name"
	dd=$(pg_datadir "$name")
	pid=${_PG_PID[$name]:-}
	# -l again, or the new postmaster would write to (and hold open) our stdout.
	_pg_as_user "$PG_BIN/pg_ctl" -D "$dd" -l "$(pg_logfile "$name")" \
		-m fast -w -t 60 restart >/dev/null
	_PG_PID[$name]=$(_pg_read_pid "$dd")
	if [[ -n $pid ]] && ! _pg_wait_pid_gone "$pid" 100; then
		echo "pg_restart: old postmaster $pid of $name did not exit" >&2
		return 1
	fi
}

# pg_psql NAME [DBNAME] PSQL-ARGS...
pg_psql() {
	local name=$1 db=postgres conn
	shift
	if (($# > 0)) && [[ $1 != -* ]]; then
		db=$1
		shift
	fi
	conn=$(pg_conninfo "$name" "$db") || return 1
	PGCONNECT_TIMEOUT=${PGCONNECT_TIMEOUT:-10} PGAPPNAME=repctl-test \
		"$PG_BIN/psql" -X -A -t -q -v ON_ERROR_STOP=1 -d "$conn" "$@"
}

# pg_sql NAME DBNAME SQL
pg_sql() {
	pg_psql "$1" "$2" -c "$3"
}

# pg_createdb NAME DBNAME
pg_createdb() {
	local name=$1 db=$2
	pg_sql "$name" postgres "CREATE DATABASE \"${db//\"/\"\"}\""
}
