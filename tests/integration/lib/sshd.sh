# shellcheck shell=bash
# tests/integration/lib/sshd.sh - throw-away OpenSSH servers on loopback for
# the file sync tests.  Source after common.sh (pg.sh is sourced here for its
# port picking and locking when the test has not done so).
#
#   sshd_start NAME            start (first time: set up) server NAME on
#                              127.0.0.1 and a free locked port; a later start
#                              after sshd_stop reuses the port; sets
#                              SSHD_PORT_<NAME>
#   sshd_stop NAME             stop it (SIGTERM to its PID, waited for)
#   sshd_authorize NAME LINE   append LINE to its authorized_keys file
#   sshd_hostkey_fp NAME       print its ed25519 host key fingerprint (SHA256:...)
#   sshd_new_hostkey NAME      replace its host key with a new one (takes
#                              effect at the next sshd_start)
#   sshd_port NAME / sshd_pid NAME / sshd_dir NAME / sshd_logfile NAME
#   SSHD_USER                  the user to log in as: the one running the test
#                              (root in the containers)
#
# NAME must match [A-Za-z0-9_]+.  Everything lives in $TEST_TMP/sshd/NAME:
# sshd_config, the host key, authorized_keys, sshd.pid and sshd.log.  The
# server only takes public keys (no passwords, no keyboard-interactive, no
# PAM) from that authorized_keys file, and listens on 127.0.0.1 only.  It
# runs in the foreground (-D) as a child of the test, so its PID is known
# exactly; every server started is stopped at EXIT by that PID, and the last
# lines of its log are printed when the test fails.

if [[ -n ${_REPCTL_SSHD_SH:-} ]]; then
	return 0
fi
_REPCTL_SSHD_SH=1

if [[ -z ${_REPCTL_COMMON_SH:-} ]]; then
	echo "sshd.sh: source common.sh first" >&2
	exit 2
fi
if [[ -z ${_REPCTL_PG_SH:-} ]]; then
	# shellcheck source-path=SCRIPTDIR
	. "$(dirname "${BASH_SOURCE[0]}")/pg.sh"
fi

SSHD_BIN=${SSHD_BIN:-/usr/sbin/sshd}
SSHD_USER=$(id -un)
# shellcheck disable=SC2034 # for the tests
export SSHD_USER

declare -A _SSHD_PORT=() _SSHD_PID=() _SSHD_LOCK=() _SSHD_SETUP=()
_SSHD_NAMES=()

_sshd_check_name() {
	if [[ ! ${1:-} =~ ^[A-Za-z0-9_]+$ ]]; then
		echo "sshd.sh: invalid server name '${1:-}'" >&2
		return 2
	fi
}

sshd_dir() { echo "$TEST_TMP/sshd/$1"; }
sshd_logfile() { echo "$TEST_TMP/sshd/$1/sshd.log"; }
sshd_port() { echo "${_SSHD_PORT[$1]:-}"; }
sshd_pid() { echo "${_SSHD_PID[$1]:-}"; }

_sshd_pid_is_sshd() {
	local comm=''
	comm=$(cat "/proc/$1/comm" 2>/dev/null) || return 1
	[[ $comm == sshd* ]]
}

_sshd_wait_gone() {
	local pid=$1 i
	for ((i = 0; i < ${2:-100}; i++)); do
		pid_running "$pid" || return 0
		sleep 0.1
	done
	return 1
}

_sshd_kill() {
	local name=$1 pid
	pid=${_SSHD_PID[$name]:-}
	if [[ -n $pid ]] && pid_running "$pid" && _sshd_pid_is_sshd "$pid"; then
		kill -TERM "$pid" 2>/dev/null || true
		if ! _sshd_wait_gone "$pid" 100 && _sshd_pid_is_sshd "$pid"; then
			echo "# sshd.sh: sshd $pid of $name still alive after 10 s; kill -9"
			kill -9 "$pid" 2>/dev/null || true
		fi
	fi
	# reap it (it is our child) so that it does not linger as a zombie
	if [[ -n $pid ]]; then
		wait "$pid" 2>/dev/null || true
	fi
	_SSHD_PID[$name]=''
}

# Registered with cleanup_push for every server: stop by PID, free the port.
_sshd_cleanup() {
	local name=$1
	_sshd_kill "$name"
	if [[ -n ${_SSHD_LOCK[$name]:-} ]]; then
		rm -rf -- "${_SSHD_LOCK[$name]}"
		_SSHD_LOCK[$name]=''
	fi
}

_sshd_dump_logs() {
	local name log
	for name in "${_SSHD_NAMES[@]}"; do
		log=$(sshd_logfile "$name")
		[[ -r $log ]] || continue
		echo "# ---- last 40 lines of the log of sshd $name ($log):"
		tail -n 40 -- "$log" | sed 's/^/# /'
	done
}

sshd_new_hostkey() {
	local name=$1 dir
	_sshd_check_name "$name"
	dir=$(sshd_dir "$name")
	rm -f -- "$dir/ssh_host_ed25519_key" "$dir/ssh_host_ed25519_key.pub"
	ssh-keygen -q -t ed25519 -N '' -C "repctl-test-$name" -f "$dir/ssh_host_ed25519_key" >/dev/null
}

_sshd_setup() {
	local name=$1 dir
	dir=$(sshd_dir "$name")
	mkdir -p "$TEST_TMP/sshd"
	rm -rf -- "$dir"
	mkdir -m 700 "$dir"
	sshd_new_hostkey "$name"
	: >"$dir/authorized_keys"
	chmod 600 "$dir/authorized_keys"
	# privilege separation directory of Debian's sshd (absent in containers)
	if ((EUID == 0)); then
		mkdir -p /run/sshd
		chmod 755 /run/sshd
	fi
	_SSHD_SETUP[$name]=1
	_SSHD_NAMES+=("$name")
	if ((${#_SSHD_NAMES[@]} == 1)); then
		on_failure_push _sshd_dump_logs
	fi
	cleanup_push _sshd_cleanup "$name"
}

_sshd_write_conf() {
	local name=$1 port=$2 dir
	dir=$(sshd_dir "$name")
	cat >"$dir/sshd_config" <<-EOF
		# repctl test harness: sshd $name, loopback only, public keys only
		ListenAddress 127.0.0.1
		Port $port
		HostKey $dir/ssh_host_ed25519_key
		PidFile $dir/sshd.pid
		AuthorizedKeysFile $dir/authorized_keys
		AuthenticationMethods publickey
		PubkeyAuthentication yes
		PasswordAuthentication no
		KbdInteractiveAuthentication no
		HostbasedAuthentication no
		PermitRootLogin prohibit-password
		PermitEmptyPasswords no
		UsePAM no
		# the test directories are not root-owned 0755 all the way up
		StrictModes no
		UseDNS no
		PrintMotd no
		PrintLastLog no
		X11Forwarding no
		AllowTcpForwarding no
		AllowAgentForwarding no
		PermitTunnel no
		LogLevel VERBOSE
	EOF
}

_sshd_listening() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

sshd_start() {
	local name=$1 dir log port attempt pid
	_sshd_check_name "$name"
	if [[ ! -x $SSHD_BIN ]]; then
		echo "sshd.sh: $SSHD_BIN not found (openssh-server; scripts/deps.sh installs it)" >&2
		return 1
	fi
	if [[ -n ${_SSHD_PID[$name]:-} ]] && pid_running "${_SSHD_PID[$name]}"; then
		echo "sshd.sh: sshd $name is already running" >&2
		return 1
	fi
	[[ -n ${_SSHD_SETUP[$name]:-} ]] || _sshd_setup "$name"
	dir=$(sshd_dir "$name")
	log=$(sshd_logfile "$name")

	for ((attempt = 1; attempt <= 3; attempt++)); do
		port=${_SSHD_PORT[$name]:-}
		if [[ -z $port || -z ${_SSHD_LOCK[$name]:-} ]]; then
			_pg_pick_port
			port=$_PG_NEWPORT
			_SSHD_PORT[$name]=$port
			_SSHD_LOCK[$name]=$PG_PORT_LOCK_DIR/$port
		fi
		_sshd_write_conf "$name" "$port"
		if ! "$SSHD_BIN" -t -f "$dir/sshd_config" >"$dir/check.log" 2>&1; then
			echo "sshd.sh: the configuration of sshd $name is refused:" >&2
			sed 's/^/# /' "$dir/check.log" >&2
			return 1
		fi
		: >>"$log"
		"$SSHD_BIN" -D -f "$dir/sshd_config" -E "$log" </dev/null >/dev/null 2>&1 &
		pid=$!
		_SSHD_PID[$name]=$pid
		if wait_until 10 _sshd_up "$pid" "$port"; then
			printf -v "SSHD_PORT_$name" '%s' "$port"
			return 0
		fi
		_sshd_kill "$name"
		# Lost a race for the port?  Try another one.
		if grep -q 'Address already in use\|Cannot bind any address' "$log" 2>/dev/null; then
			rm -rf -- "${_SSHD_LOCK[$name]}"
			_SSHD_LOCK[$name]=''
			_SSHD_PORT[$name]=''
			continue
		fi
		break
	done
	echo "sshd.sh: starting sshd $name failed:" >&2
	[[ -r $log ]] && tail -n 40 "$log" | sed 's/^/# /' >&2
	return 1
}

# Up: our process alive and the port accepting connections.
_sshd_up() {
	pid_running "$1" && _sshd_listening "$2"
}

sshd_stop() {
	local name=$1
	_sshd_check_name "$name"
	_sshd_kill "$name"
	# Keep the port lock: sshd_start NAME reuses the same port.
}

sshd_authorize() {
	local name=$1 line=$2 dir
	_sshd_check_name "$name"
	dir=$(sshd_dir "$name")
	printf '%s\n' "$line" >>"$dir/authorized_keys"
}

sshd_hostkey_fp() {
	local name=$1
	_sshd_check_name "$name"
	ssh-keygen -l -E sha256 -f "$(sshd_dir "$name")/ssh_host_ed25519_key.pub" | awk '{print $2}'
}
