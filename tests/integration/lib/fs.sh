# shellcheck shell=bash
# tests/integration/lib/fs.sh - shared setup of the file sync tests
# (t_fs_*.sh): two nodes, one local and one behind a real sshd on loopback.
# Source after common.sh (pg.sh, fixtures.sh and sshd.sh are sourced here
# when the test has not done so).
#
#   fs_setup                  start cluster "fsmeta" and sshd "fsn"; export
#                             REPCTL_META, REPCTL_STATE_DIR, REPCTL_NODE=cava;
#                             repctl install; two nodes with conninfo to
#                             databases of that same cluster: cava (the
#                             coordinator's own node: its folder is served by
#                             a local agent through pipes) and juke (reached
#                             over the test sshd, ssh=USER@127.0.0.1:PORT,
#                             agent=$REPCTL); keygen, authorize the key in the
#                             sshd, trust juke's host key; all asserted
#   fs_add_folder NAME A B [ARGS...]
#                             mkdir -p A B, repctl add folder NAME
#                             nodes=cava:A,juke:B ARGS..., asserted
#   fs_node_sql SQL           run SQL in the metadata database (one value)
#   tree_sum DIR              sorted "sha256  ./path" of every regular file
#                             under DIR, .repctl excluded (symlinks are not
#                             listed: they are not synced)
#   trees_equal MSG A B       assert tree_sum A == tree_sum B (diff on failure)
#   run_sync NAME [EXPECT_RC [ENV=VAL...]]
#                             repctl sync folder NAME (with the extra
#                             environment, e.g. REPCTL_CONFIG=...), assert its
#                             exit status (default 0) and parse the summary
#                             line into SYNC_FILES SYNC_DATA_MB SYNC_REUSED_MB
#                             SYNC_DELETED SYNC_CONFLICTS SYNC_WIRE_MB (-1 when
#                             the line is missing); SYNC_OUT, SYNC_ERR, SYNC_RC;
#                             SYNC_WIRE_BYTES and SYNC_DATA_BYTES are the
#                             exact counters repctl recorded for the run in
#                             repctl.folder_run; SYNC_SSH_BYTES is what the
#                             test sshd itself counted on the connection
#                             ("Transferred: sent N, received M" in its log,
#                             encrypted bytes, SSH handshake included; -1
#                             when no connection was logged)
#   wire_mb TEXT              the "X MB on the wire" figure of a summary line
#   sync_until_quiet NAME MAX run_sync until a run copies, deletes and
#                             conflicts nothing (at most MAX runs); sets
#                             FS_RUNS; 1 when it never got quiet
#   mb_below X LIMIT MSG      assert the decimal X < LIMIT (awk)
#   mb_between X LO HI MSG    assert LO <= X <= HI
#   fs_count_lines FILE RE    grep -c, 0 when none
#   fs_mutate DIR SEED NOPS [add]
#                             NOPS random operations on the tree under DIR
#                             (.repctl untouched), chosen by python's
#                             random.Random(SEED) (so a seed gives the same
#                             operations and bytes): add a file (mostly small,
#                             some of several chunks), edit one (overwrite a
#                             range, append, truncate, rewrite), delete one,
#                             rename one (mv, possibly to another directory),
#                             now and then rename a whole directory; prints one
#                             line per operation; with "add", only adds
#
# The local folder is conventionally $TEST_TMP/a (node cava) and the remote
# one $TEST_TMP/b (node juke, written by the agent that the sshd starts).

if [[ -n ${_REPCTL_FS_SH:-} ]]; then
	return 0
fi
_REPCTL_FS_SH=1

if [[ -z ${_REPCTL_COMMON_SH:-} ]]; then
	echo "fs.sh: source common.sh first" >&2
	exit 2
fi
# shellcheck source-path=SCRIPTDIR
[[ -n ${_REPCTL_PG_SH:-} ]] || . "$(dirname "${BASH_SOURCE[0]}")/pg.sh"
# shellcheck source-path=SCRIPTDIR
[[ -n ${_REPCTL_FIXTURES_SH:-} ]] || . "$(dirname "${BASH_SOURCE[0]}")/fixtures.sh"
# shellcheck source-path=SCRIPTDIR
[[ -n ${_REPCTL_SSHD_SH:-} ]] || . "$(dirname "${BASH_SOURCE[0]}")/sshd.sh"

FS_META=fsmeta
FS_SSHD=fsn
FS_LOCAL=cava
FS_REMOTE=juke

fs_node_sql() {
	pg_sql "$FS_META" postgres "$1"
}

fs_setup() {
	pg_start "$FS_META"
	sshd_start "$FS_SSHD"
	fx_env "$FS_META"
	REPCTL_NODE=$FS_LOCAL
	export REPCTL_NODE
	fx_install
	pg_createdb "$FS_META" cavadb
	pg_createdb "$FS_META" jukedb
	run_repctl add database "$FS_LOCAL" conn="$(pg_conninfo "$FS_META" cavadb)"
	is "$RC" 0 "add database $FS_LOCAL (the local node)"
	run_repctl add database "$FS_REMOTE" conn="$(pg_conninfo "$FS_META" jukedb)" \
		ssh="$SSHD_USER@127.0.0.1:$(sshd_port "$FS_SSHD")" agent="$REPCTL"
	is "$RC" 0 "add database $FS_REMOTE (over ssh)"
	[[ $RC == 0 ]] || diag "$ERR"
	run_repctl keygen
	is "$RC" 0 "keygen"
	sshd_authorize "$FS_SSHD" "$(cat "$REPCTL_STATE_DIR/ssh/id_ed25519.pub")"
	run_repctl trust "$FS_REMOTE" --fingerprint="$(sshd_hostkey_fp "$FS_SSHD")"
	is "$RC" 0 "trust $FS_REMOTE's host key"
	[[ $RC == 0 ]] || diag "$ERR"
}

fs_add_folder() {
	local name=$1 a=$2 b=$3
	shift 3
	mkdir -p -- "$a" "$b"
	run_repctl add folder "$name" "nodes=$FS_LOCAL:$a,$FS_REMOTE:$b" "$@"
	is "$RC" 0 "add folder $name"
	[[ $RC == 0 ]] || diag "$OUT $ERR"
	like "$OUT" 'marker created on 2 of 2' "folder $name: marker created on both nodes"
}

tree_sum() {
	(cd "$1" && find . -path ./.repctl -prune -o -type f -print0 | sort -z |
		xargs -0 -r sha256sum)
}

trees_equal() {
	local msg=$1 a b
	a=$(tree_sum "$2")
	b=$(tree_sum "$3")
	if [[ $a == "$b" ]]; then
		_t_result 1 "$msg" "$(_t_where 1)"
	else
		_t_result 0 "$msg" "$(_t_where 1)" \
			"$(diff <(printf '%s\n' "$a") <(printf '%s\n' "$b") | head -n 40 || true)"
	fi
}

wire_mb() {
	sed -n 's/.* \([0-9][0-9]*\.[0-9]\) MB on the wire.*/\1/p' <<<"$1" | tail -n 1
}

fs_count_lines() {
	local n
	n=$(grep -c -- "$2" "$1" 2>/dev/null) || true
	echo "${n:-0}"
}

_fs_transferred_lines() {
	fs_count_lines "$(sshd_logfile "$FS_SSHD")" '^Transferred: '
}

_fs_sshd_logged_more() {
	(($(_fs_transferred_lines) > $1))
}

run_sync() {
	local name=$1 want=${2:-0} before line
	local -a envs=()
	(($# > 2)) && envs=("${@:3}")
	before=$(_fs_transferred_lines)
	SYNC_RC=0
	env ${envs[@]+"${envs[@]}"} "$REPCTL" sync folder "$name" \
		>"$TEST_TMP/.sync.out" 2>"$TEST_TMP/.sync.err" || SYNC_RC=$?
	SYNC_OUT=$(<"$TEST_TMP/.sync.out")
	SYNC_ERR=$(<"$TEST_TMP/.sync.err")
	printf '# $ repctl sync folder %s  => %d: %s\n' "$name" "$SYNC_RC" "$SYNC_OUT"
	if [[ -n $SYNC_ERR ]]; then
		# shellcheck disable=SC2001 # a prefix on every line
		sed 's/^/#   stderr: /' <<<"$SYNC_ERR" | head -n 20
	fi
	if [[ $SYNC_RC == "$want" ]]; then
		_t_result 1 "sync folder $name exits $want" "$(_t_where 1)"
	else
		_t_result 0 "sync folder $name exits $want" "$(_t_where 1)" \
			"exit $SYNC_RC; stdout: $SYNC_OUT"$'\n'"stderr: $SYNC_ERR"
	fi
	# shellcheck disable=SC2034 # for the tests
	SYNC_FILES=-1 SYNC_DATA_MB=-1 SYNC_REUSED_MB=-1 SYNC_DELETED=-1 SYNC_CONFLICTS=-1
	SYNC_WIRE_MB=-1
	line=$(grep -E "^folder '.*': (good|bad), " <<<"$SYNC_OUT" | tail -n 1) || true
	# shellcheck disable=SC2034 # for the tests
	if [[ $line =~ ([0-9]+)\ file\(s\)\ copied\ \(([0-9.]+)\ MB\ of\ file\ data,\ ([0-9.]+)\ MB\ reused\ locally\),\ ([0-9]+)\ deleted,\ ([0-9]+)\ conflict\(s\),\ ([0-9.]+)\ MB\ on\ the\ wire ]]; then
		SYNC_FILES=${BASH_REMATCH[1]} SYNC_DATA_MB=${BASH_REMATCH[2]}
		SYNC_REUSED_MB=${BASH_REMATCH[3]} SYNC_DELETED=${BASH_REMATCH[4]}
		SYNC_CONFLICTS=${BASH_REMATCH[5]} SYNC_WIRE_MB=${BASH_REMATCH[6]}
	fi
	SYNC_WIRE_BYTES=$(fs_node_sql "SELECT coalesce(wire_bytes, -1) FROM repctl.folder_run
		WHERE folder = '$name' ORDER BY id DESC LIMIT 1") || SYNC_WIRE_BYTES=-1
	SYNC_DATA_BYTES=$(fs_node_sql "SELECT coalesce(bytes, -1) FROM repctl.folder_run
		WHERE folder = '$name' ORDER BY id DESC LIMIT 1") || SYNC_DATA_BYTES=-1
	SYNC_SSH_BYTES=-1
	# sshd logs the byte counts when the connection has closed, which may be
	# a moment after repctl exits (no need to wait long when repctl says
	# nothing crossed a connection: refused before or during the handshake)
	local wait_s=5
	[[ $SYNC_WIRE_BYTES =~ ^[1-9] ]] || wait_s=0.5
	if wait_until "$wait_s" _fs_sshd_logged_more "$before"; then
		SYNC_SSH_BYTES=$(grep '^Transferred: ' "$(sshd_logfile "$FS_SSHD")" | tail -n 1 |
			sed -n 's/^Transferred: sent \([0-9]*\), received \([0-9]*\) bytes.*/\1 \2/p' |
			awk '{print $1 + $2}')
	fi
	note "  data ${SYNC_DATA_BYTES} B, wire ${SYNC_WIRE_BYTES} B (repctl), ssh ${SYNC_SSH_BYTES} B (sshd)"
	return 0
}

sync_until_quiet() {
	local name=$1 max=$2
	FS_RUNS=0
	while ((FS_RUNS < max)); do
		FS_RUNS=$((FS_RUNS + 1))
		run_sync "$name"
		if [[ $SYNC_RC == 0 && $SYNC_FILES == 0 && $SYNC_DELETED == 0 && $SYNC_CONFLICTS == 0 ]]; then
			return 0
		fi
	done
	return 1
}

mb_below() {
	local x=$1 lim=$2 msg=$3
	if awk -v x="$x" -v l="$lim" 'BEGIN { exit !(x >= 0 && x < l) }'; then
		_t_result 1 "$msg ($x < $lim)" "$(_t_where 1)"
	else
		_t_result 0 "$msg" "$(_t_where 1)" "got $x, expected >= 0 and < $lim"
	fi
}

mb_between() {
	local x=$1 lo=$2 hi=$3 msg=$4
	if awk -v x="$x" -v l="$lo" -v h="$hi" 'BEGIN { exit !(x >= l && x <= h) }'; then
		_t_result 1 "$msg ($lo <= $x <= $hi)" "$(_t_where 1)"
	else
		_t_result 0 "$msg" "$(_t_where 1)" "got $x, expected between $lo and $hi"
	fi
}

fs_mutate() {
	python3 - "$@" <<-'PY'
		import os, random, sys
		root, seed, nops = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
		only_add = len(sys.argv) > 4 and sys.argv[4] == 'add'
		rnd = random.Random(seed)
		def files():
		    out = []
		    for dp, dn, fn in os.walk(root):
		        if dp == root and '.repctl' in dn:
		            dn.remove('.repctl')
		        for f in fn:
		            out.append(os.path.relpath(os.path.join(dp, f), root))
		    return sorted(out)
		def dirs():
		    out = ['']
		    for dp, dn, fn in os.walk(root):
		        if dp == root and '.repctl' in dn:
		            dn.remove('.repctl')
		        for d in dn:
		            out.append(os.path.relpath(os.path.join(dp, d), root))
		    return sorted(out)
		def size():
		    r = rnd.random()
		    if r < 0.7:
		        return rnd.randrange(0, 8000)
		    if r < 0.95:
		        return rnd.randrange(8000, 100000)
		    return rnd.randrange(100000, 600000)
		def newpath():
		    d = rnd.choice(dirs() + ['d%d' % rnd.randrange(6), 'd%d/s%d' % (rnd.randrange(6), rnd.randrange(3))])
		    name = 'f%05d%s' % (rnd.randrange(100000), rnd.choice(['.flac', '.txt', '.jpg', '', '.tar.gz']))
		    return os.path.join(d, name) if d else name
		def write(rel, data):
		    full = os.path.join(root, rel)
		    os.makedirs(os.path.dirname(full), exist_ok=True)
		    with open(full, 'wb') as f:
		        f.write(data)
		for i in range(nops):
		    fs = files()
		    op = rnd.choices(['add', 'edit', 'delete', 'rename', 'renamedir'],
		                     weights=[4, 3, 2, 2, 0.3])[0]
		    if not fs or only_add:
		        op = 'add'
		    if op == 'add':
		        p = newpath()
		        if os.path.isdir(os.path.join(root, p)):
		            continue
		        write(p, rnd.randbytes(size()))
		        print('add', p)
		    elif op == 'edit':
		        p = rnd.choice(fs)
		        full = os.path.join(root, p)
		        how = rnd.choice(['overwrite', 'append', 'truncate', 'rewrite'])
		        n = os.path.getsize(full)
		        if how == 'overwrite' and n > 0:
		            with open(full, 'r+b') as f:
		                off = rnd.randrange(n)
		                f.seek(off)
		                f.write(rnd.randbytes(min(n - off, rnd.randrange(1, 5000))))
		        elif how == 'append':
		            with open(full, 'ab') as f:
		                f.write(rnd.randbytes(rnd.randrange(1, 20000)))
		        elif how == 'truncate' and n > 1:
		            os.truncate(full, rnd.randrange(n))
		        else:
		            write(p, rnd.randbytes(size()))
		        print('edit', how, p)
		    elif op == 'delete':
		        p = rnd.choice(fs)
		        os.unlink(os.path.join(root, p))
		        print('delete', p)
		    elif op == 'rename':
		        p = rnd.choice(fs)
		        q = newpath()
		        if os.path.exists(os.path.join(root, q)):
		            continue
		        os.makedirs(os.path.dirname(os.path.join(root, q)), exist_ok=True)
		        os.rename(os.path.join(root, p), os.path.join(root, q))
		        print('rename', p, q)
		    else:
		        ds = [d for d in dirs() if d]
		        if not ds:
		            continue
		        d = rnd.choice(ds)
		        q = os.path.join(os.path.dirname(d), 'r%04d' % rnd.randrange(10000))
		        if os.path.exists(os.path.join(root, q)):
		            continue
		        os.rename(os.path.join(root, d), os.path.join(root, q))
		        print('renamedir', d, q)
	PY
}
