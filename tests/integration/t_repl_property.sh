#!/usr/bin/env bash
# tests/integration/t_repl_property.sh - randomized property test of the
# engine: many seeds, each a random topology and conflict strategy under
# concurrent writers on every node, overlapping and SIGKILLed runs.
#
# Per seed (three nodes on the clusters a, b, c, fresh databases and herd,
# the clusters and the metadata database reused across seeds):
#  - topology: pair (a <-> b as two one-way syncs, c idle), chain (a <-> b
#    and b <-> c), star (hub a: a <-> b and a <-> c as one-way syncs), starm
#    (hub a: two multi-source syncs a,b and a,c), mesh (one multi-source
#    sync of all three, in a random order);
#  - strategy: latest (twice as often), first, source, target, skip;
#  - for PROP_WRITE_SECS seconds two writers on every node of the topology
#    (a procedure, one transaction per operation) upsert, update and delete
#    songs and playlist_items (composite key) in a small shared key range,
#    delete and re-insert the same key, write both tables in one
#    transaction, and now and then keep the transaction open a little
#    (above all after inserting a key the node did not have, so that an
#    apply of another node's version of it waits for the local insert);
#    every committed write is logged in the same transaction in the
#    unreplicated table prop_wlog with a window [lo, hi] that holds both its
#    updated_at (clock_timestamp()) and its capture time;
#  - meanwhile `repctl run` processes in the background, overlapping: one
#    sync run twice at once, both directions of a pair at once, and at
#    least one run SIGKILLed at a random moment (by its pid); for about one
#    seed in four the daemon too (`repctl start`), SIGKILLed (coordinator
#    and workers, by pid), started again, and stopped before the checks;
#  - then every sync runs round after round until a round is quiet (every
#    run good, I/U/D 0/0/0, no conflict), and:
#      * every table is identical on all nodes of the topology (skip: every
#        key never logged in repctl.conflict is identical; logged keys may
#        differ);
#      * a further round writes nothing (no run writes, shadow tables
#        unchanged: no echo);
#      * on every node, every row is one committed write of its key (no
#        phantom or mixed row) and a key is missing only if a delete of it
#        committed (no lost insert);
#      * latest: every key whose last write began more than PROP_SEP_MS ms
#        after every other write of it had ended holds exactly that last
#        write (or is gone if it was a delete).  The windows make any
#        positive margin unambiguous (all clusters share one clock, and a
#        write that saw another one began after that one committed); the
#        margin only absorbs clock-offset corrections;
#      * no writer operation took more than PROP_STALL_SECS (10) seconds
#        (an apply that holds a local writer up for long);
#      * no sanitizer report from any run or from the daemon.
#  A failure prints the differing keys with the engine's lines about them:
#  the runs' conflict lines, the conflict log (both rows, winner, rule) and
#  each node's shadow row (vector, origin, change time).
#
# The timing of the writers and runs is not reproducible, the rest is: a
# failing seed is printed with the command that reruns it
# (PROP_SEED_BASE=S PROP_SEEDS=1; the same topology, strategy and choices).
# Environment:
#   PROP_SEEDS (default 18: 2-3.5 minutes under ASan), PROP_SEED_BASE (1),
#   PROP_WRITE_SECS (4), PROP_SEP_MS (50), PROP_DAEMON (-1: some seeds, 0:
#   never, 1: always), PROP_TOPOLOGY / PROP_STRATEGY (force one for every
#   seed).  scripts/soak.sh (make soak) runs it with many seeds.
# shellcheck disable=SC2317 # helpers are called through wait_until / ok
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

SEEDS=${PROP_SEEDS:-18}
SEED_BASE=${PROP_SEED_BASE:-1}
WRITE_SECS=${PROP_WRITE_SECS:-4}
SEP_MS=${PROP_SEP_MS:-50}
STALL_SECS=${PROP_STALL_SECS:-10} # longest a writer may wait for the replication
DAEMON_MODE=${PROP_DAEMON:--1}
NSONGS=40 # song ids 1..NSONGS
NPL=4     # playlist_items keys (1..NPL, 1..NPOS)
NPOS=5
MAX_BG=4  # background runs at once
[[ $SEEDS =~ ^[0-9]+$ && $SEED_BASE =~ ^[0-9]+$ ]] || {
	echo "PROP_SEEDS and PROP_SEED_BASE must be numbers" >&2
	exit 2
}
note "seeds $SEED_BASE..$((SEED_BASE + SEEDS - 1)), writers $WRITE_SECS s, latest: keys separated by > $SEP_MS ms"

RUN_BIN=$REPCTL
# The foreground runs go through a watchdog, so a hung run fails the test
# instead of hanging it (the background runs are started directly: they
# are killed by their own pid).
cat >"$TEST_TMP/repctl-watchdog" <<EOF
#!/bin/sh
exec timeout -k 5 120 $(printf '%q' "$RUN_BIN") "\$@"
EOF
chmod 755 "$TEST_TMP/repctl-watchdog"

# ---- the schema of every node, and the writer ---------------------------------------------
# shellcheck disable=SC2016 # $$ is SQL dollar quoting
PROP_SCHEMA_SQL='
CREATE TABLE public.songs (
    id         bigint PRIMARY KEY,
    title      text NOT NULL,
    plays      integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE public.playlist_items (
    playlist_id bigint,
    position    integer,
    note        text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (playlist_id, position)
);
-- what the writer committed; no primary key, so not replicated
CREATE TABLE public.prop_wlog (
    node text, tbl text, k text, op text, val text,
    lo timestamptz, ts timestamptz, hi timestamptz
);
-- One operation per transaction until the deadline.  Every write that
-- commits is logged in its own transaction: lo before it, ts = its
-- updated_at (a delete: the time after it), hi after it, so the value and
-- the capture time of the write are both in [lo, hi].  A failed operation
-- (deadlock, a key that another node inserted meanwhile) rolls back, log
-- included.
CREATE PROCEDURE public.prop_writer(p_node text, p_seed float8, p_secs float8,
                                    p_nsongs int, p_npl int, p_npos int)
LANGUAGE plpgsql AS $$
DECLARE
    deadline timestamptz := clock_timestamp() + make_interval(secs => p_secs);
    n int := 0;
    r float8;
    k bigint;
    pl bigint;
    pos int;
    v text;
    lo timestamptz;
    t timestamptz;
    cnt int;
    reuse text := NULL;
    rk bigint;
    rpl bigint;
    rpos int;
    fresh boolean;
    longest interval := make_interval();
    longest_at timestamptz;
BEGIN
    PERFORM setseed(p_seed);
    WHILE clock_timestamp() < deadline LOOP
        n := n + 1;
        v := p_node || $v$#$v$ || n;
        r := random();
        k := 1 + floor(random() * p_nsongs)::bigint;
        pl := 1 + floor(random() * p_npl)::bigint;
        pos := 1 + floor(random() * p_npos)::int;
        IF reuse = $v$songs$v$ THEN
            k := rk; r := 0.0;   -- re-insert the song deleted just before
        ELSIF reuse = $v$pl$v$ THEN
            pl := rpl; pos := rpos; r := 0.50;  -- the same for a playlist item
        END IF;
        reuse := NULL;
        fresh := false;
        BEGIN
            lo := clock_timestamp();
            IF r < 0.30 THEN
                INSERT INTO songs AS s (id, title, plays, updated_at)
                VALUES (k, v, n, clock_timestamp())
                ON CONFLICT (id) DO UPDATE
                   SET title = EXCLUDED.title, plays = EXCLUDED.plays,
                       updated_at = clock_timestamp()
                RETURNING s.updated_at, s.xmax = 0 INTO t, fresh;
                INSERT INTO prop_wlog VALUES (p_node, $v$songs$v$,
                    jsonb_build_object($v$id$v$, k)::text, $v$put$v$, v, lo, t, clock_timestamp());
            ELSIF r < 0.42 THEN
                UPDATE songs SET title = v, plays = plays + 1, updated_at = clock_timestamp()
                 WHERE id = k RETURNING updated_at INTO t;
                IF FOUND THEN
                    INSERT INTO prop_wlog VALUES (p_node, $v$songs$v$,
                        jsonb_build_object($v$id$v$, k)::text, $v$put$v$, v, lo, t, clock_timestamp());
                END IF;
            ELSIF r < 0.50 THEN
                DELETE FROM songs WHERE id = k;
                GET DIAGNOSTICS cnt = ROW_COUNT;
                IF cnt > 0 THEN
                    t := clock_timestamp();
                    INSERT INTO prop_wlog VALUES (p_node, $v$songs$v$,
                        jsonb_build_object($v$id$v$, k)::text, $v$del$v$, NULL, lo, t, t);
                    IF random() < 0.5 THEN
                        reuse := $v$songs$v$; rk := k;
                    END IF;
                END IF;
            ELSIF r < 0.68 THEN
                INSERT INTO playlist_items AS p (playlist_id, position, note, updated_at)
                VALUES (pl, pos, v, clock_timestamp())
                ON CONFLICT (playlist_id, position) DO UPDATE
                   SET note = EXCLUDED.note, updated_at = clock_timestamp()
                RETURNING p.updated_at, p.xmax = 0 INTO t, fresh;
                INSERT INTO prop_wlog VALUES (p_node, $v$playlist_items$v$,
                    jsonb_build_object($v$playlist_id$v$, pl, $v$position$v$, pos)::text,
                    $v$put$v$, v, lo, t, clock_timestamp());
            ELSIF r < 0.78 THEN
                DELETE FROM playlist_items WHERE playlist_id = pl AND position = pos;
                GET DIAGNOSTICS cnt = ROW_COUNT;
                IF cnt > 0 THEN
                    t := clock_timestamp();
                    INSERT INTO prop_wlog VALUES (p_node, $v$playlist_items$v$,
                        jsonb_build_object($v$playlist_id$v$, pl, $v$position$v$, pos)::text,
                        $v$del$v$, NULL, lo, t, t);
                    IF random() < 0.5 THEN
                        reuse := $v$pl$v$; rpl := pl; rpos := pos;
                    END IF;
                END IF;
            ELSE
                -- one transaction, both tables
                INSERT INTO songs AS s (id, title, plays, updated_at)
                VALUES (k, v, n, clock_timestamp())
                ON CONFLICT (id) DO UPDATE
                   SET title = EXCLUDED.title, plays = EXCLUDED.plays,
                       updated_at = clock_timestamp()
                RETURNING s.updated_at, s.xmax = 0 INTO t, fresh;
                INSERT INTO prop_wlog VALUES (p_node, $v$songs$v$,
                    jsonb_build_object($v$id$v$, k)::text, $v$put$v$, v, lo, t, clock_timestamp());
                lo := clock_timestamp();
                INSERT INTO playlist_items AS p (playlist_id, position, note, updated_at)
                VALUES (pl, pos, v, clock_timestamp())
                ON CONFLICT (playlist_id, position) DO UPDATE
                   SET note = EXCLUDED.note, updated_at = clock_timestamp()
                RETURNING p.updated_at, p.xmax = 0 INTO t, fresh;
                INSERT INTO prop_wlog VALUES (p_node, $v$playlist_items$v$,
                    jsonb_build_object($v$playlist_id$v$, pl, $v$position$v$, pos)::text,
                    $v$put$v$, v, lo, t, clock_timestamp());
            END IF;
            -- now and then the transaction stays open a little: an apply
            -- of the same key then waits for it (or it for the apply); in
            -- particular an insert of a key this node does not have, while
            -- the version of another node may be on its way
            IF fresh AND random() < 0.5 THEN
                PERFORM pg_sleep(0.05 + random() * 0.25);
            ELSIF random() < 0.15 THEN
                PERFORM pg_sleep(0.02 + random() * 0.13);
            END IF;
        EXCEPTION WHEN OTHERS THEN
            reuse := NULL;
        END;
        IF clock_timestamp() - lo > longest THEN
            longest := clock_timestamp() - lo;
            longest_at := lo;
        END IF;
        COMMIT;
        PERFORM pg_sleep(random() * 0.03);
    END LOOP;
    RAISE NOTICE $v$longest operation: % s, from %$v$,
        round(extract(epoch FROM longest), 1), to_char(longest_at, $v$HH24:MI:SS.MS$v$);
END
$$;
'

# every write: node|tbl|key|op|val|lo|ts|hi (times in microseconds since the epoch)
WLOG_SQL="SELECT concat_ws('|', node, tbl, k, op, coalesce(val, ''),
                 (extract(epoch FROM lo) * 1000000)::bigint,
                 (extract(epoch FROM ts) * 1000000)::bigint,
                 (extract(epoch FROM hi) * 1000000)::bigint) FROM prop_wlog"
# the final state: tbl|key|val|updated_at, key order
STATE_SQL="SELECT concat_ws('|', 'songs', jsonb_build_object('id', id)::text, title,
                 (extract(epoch FROM updated_at) * 1000000)::bigint) FROM songs
           UNION ALL
           SELECT concat_ws('|', 'playlist_items',
                 jsonb_build_object('playlist_id', playlist_id, 'position', position)::text, note,
                 (extract(epoch FROM updated_at) * 1000000)::bigint) FROM playlist_items
           ORDER BY 1"
# whole rows, for the per-key comparison under skip: tbl|key|row
ROWS_SQL="SELECT concat_ws('|', 'songs', jsonb_build_object('id', id)::text, t::text) FROM songs t
          UNION ALL
          SELECT concat_ws('|', 'playlist_items',
                 jsonb_build_object('playlist_id', playlist_id, 'position', position)::text, t::text)
            FROM playlist_items t
          ORDER BY 1"

# The oracle: ORACLE MODE SEP_US WRITES STATE_FILE... (one state file per
# node, named .../state.NODE); prints "checked N" and one line per problem.
cat >"$TEST_TMP/oracle.py" <<'PY'
import collections, os, sys

mode, sep_us, wfile = sys.argv[1], int(sys.argv[2]), sys.argv[3]
writes = collections.defaultdict(list)
for line in open(wfile):
    line = line.rstrip('\n')
    if not line:
        continue
    node, tbl, k, op, val, lo, ts, hi = line.split('|')
    writes[(tbl, k)].append((int(lo), int(ts), int(hi), op, val, node))

t0 = min((w[0] for ws in writes.values() for w in ws), default=0)

def fmt(w):
    # times in seconds since the first write of the seed
    lo, ts, hi, op, val, node = w
    return '%s %s [%.4f..%.4f]' % (op, val or node, (lo - t0) / 1e6, (hi - t0) / 1e6)

def history(key, n=6):
    ws = sorted(writes.get(key, []))
    return '; '.join(fmt(w) for w in ws[-n:]) + ('' if len(ws) <= n else ' (last %d of %d)' % (n, len(ws)))

problems = []
checked = ambiguous = 0
for sfile in sys.argv[4:]:
    first = sfile == sys.argv[4]
    node = os.path.basename(sfile).split('.', 1)[1]
    state = {}
    for line in open(sfile):
        line = line.rstrip('\n')
        if not line:
            continue
        tbl, k, val, ts = line.split('|')
        state[(tbl, k)] = (val, int(ts))
    for key, (val, ts) in sorted(state.items()):
        if not any(w[3] == 'put' and w[4] == val and w[1] == ts for w in writes.get(key, [])):
            problems.append('%s: %s %s = %s@%.4f is no committed write (phantom or mixed row); writes: %s'
                            % (node, key[0], key[1], val, (ts - t0) / 1e6, history(key)))
    for key, ws in sorted(writes.items()):
        if key not in state and not any(w[3] == 'del' for w in ws):
            problems.append('%s: %s %s is missing but was never deleted (lost write); writes: %s'
                            % (node, key[0], key[1], history(key)))
    if mode != 'latest':
        continue
    for key, ws in sorted(writes.items()):
        last = max(ws)
        others = [w for w in ws if w is not last]
        if others and last[0] <= max(w[2] for w in others) + sep_us:
            ambiguous += first
            continue
        checked += first
        got = state.get(key)
        if last[3] == 'del':
            if got is not None:
                problems.append('%s: %s %s = %s, but the last write deleted it (latest); writes: %s'
                                % (node, key[0], key[1], got[0], history(key)))
        elif got != (last[4], last[1]):
            problems.append('%s: %s %s = %s, but the last write was %s (latest); writes: %s'
                            % (node, key[0], key[1], 'missing' if got is None else got[0],
                               last[4], history(key)))
print('checked %d ambiguous %d' % (checked, ambiguous))
for p in problems:
    print(p)
PY

# ---- clusters, metadata, the template database -------------------------------------------------
pg_start meta
fx_env meta
fx_install
for cl in a b c; do
	pg_start "$cl"
	pg_createdb "$cl" prop_template
	pg_psql "$cl" prop_template <<<"$PROP_SCHEMA_SQL"
done

meta() { pg_sql meta postgres "$1"; }

# prop_add_node NODE CLUSTER DB HERD : a fresh database from the template,
# registered as NODE with its tables in HERD (the repl.sh helpers then work
# on it)
prop_add_node() {
	local n=$1 cl=$2 db=$3 herd=$4
	REPL_CLUSTER[$n]=$cl
	REPL_DBNAME[$n]=$db
	pg_sql "$cl" postgres "CREATE DATABASE $db TEMPLATE prop_template"
	run_repctl add database "$n" conn="$(pg_conninfo "$cl" "$db")"
	[[ $RC == 0 ]] || fail "add database $n" "$ERR"
	run_repctl add all tables --herd="$herd" --db="$n" --schema=public
	[[ $RC == 0 ]] || fail "add all tables --herd=$herd --db=$n" "$ERR"
}

add_sync() {
	run_repctl add sync "$@"
	[[ $RC == 0 ]] || fail "add sync $1" "$ERR"
}

R=0
r() { R=$((RANDOM % $1)); }

# ---- background runs --------------------------------------------------------------------------
declare -A BG_SYNC=() BG_REAPED=()
BG_PIDS=()
BG_N=0
BG_KILLED=0
BG_FAILED=0
BG_LOGS=''

# bg_run SYNC : start `repctl run SYNC` in the background; BG_PID = its pid
bg_run() {
	BG_N=$((BG_N + 1))
	local f=$SEED_DIR/run.$BG_N.$1
	"$RUN_BIN" run "$1" >"$f.out" 2>"$f.err" &
	BG_PID=$!
	BG_PIDS+=("$BG_PID")
	BG_SYNC[$BG_PID]="$1 ($f)"
}

bg_running() {
	local p c=0
	for p in "${BG_PIDS[@]}"; do
		pid_running "$p" && c=$((c + 1))
	done
	echo "$c"
}

# bg_kill : start a run and SIGKILL it at a random moment: 0..KILL_MS ms
# in, KILL_MS adapting to how long runs take (shorter after a kill that
# came too late, longer after a hit); BG_KILLED counts the kills that hit
# a live run
KILL_MS=300
bg_kill() {
	local s=$1 ms rc=0 hit=0
	bg_run "$s"
	r "$KILL_MS"
	ms=$R
	sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
	if pid_running "$BG_PID" && kill -9 "$BG_PID" 2>/dev/null; then
		{ wait "$BG_PID"; } 2>/dev/null || rc=$?
		BG_REAPED[$BG_PID]=$rc
		if ((rc == 137)); then
			hit=1
			BG_KILLED=$((BG_KILLED + 1))
			note "  SIGKILLed run of $s (pid $BG_PID) after $ms ms"
			echo killed >"$SEED_DIR/run.$BG_N.$s.killed"
		fi
	fi
	if ((hit)); then
		KILL_MS=$((KILL_MS * 5 / 4 > 2000 ? 2000 : KILL_MS * 5 / 4))
	else
		KILL_MS=$((KILL_MS * 3 / 5 < 10 ? 10 : KILL_MS * 3 / 5))
	fi
}

# bg_wait_all : wait for every background run (60 s at most each), count
# the failed ones, check their stderr for sanitizer reports
bg_wait_all() {
	local p rc f deadline
	deadline=$(($(_t_now_usec) + 60000000))
	for p in "${BG_PIDS[@]}"; do
		[[ -z ${BG_REAPED[$p]:-} ]] || continue
		while pid_running "$p" && (($(_t_now_usec) < deadline)); do
			sleep 0.1
		done
		if pid_running "$p"; then
			fail "seed $SEED: background run ${BG_SYNC[$p]} finished within 60 s" "still running; killed"
			kill -9 "$p" 2>/dev/null || true
		fi
		rc=0
		wait "$p" 2>/dev/null || rc=$?
		f=${BG_SYNC[$p]#*(}
		f=${f%)}
		if ((rc != 0 && rc != 137)); then
			BG_FAILED=$((BG_FAILED + 1))
			BG_LOGS+="$({ grep -v '^repctl: conflict on ' "$f.err" || true; } | awk 'NR <= 2' | tr '\n' ' ')"$'\n'
		fi
		if grep -Eq 'AddressSanitizer|LeakSanitizer|runtime error:' "$f.err"; then
			fail "seed $SEED: no sanitizer report from background run ${BG_SYNC[$p]}" "$(head -n 60 "$f.err")"
		fi
	done
	BG_PIDS=()
	BG_REAPED=()
}

# ---- the daemon --------------------------------------------------------------------------------
daemon_kill() {
	local pidfile=$REPCTL_STATE_DIR/repctl.pid cpid kids p
	cpid=$(<"$pidfile")
	kids=$(pgrep -P "$cpid" | tr '\n' ' ' || true)
	note "  SIGKILL of the daemon: coordinator $cpid, workers $kids"
	# shellcheck disable=SC2086 # one pid per word
	kill -9 "$cpid" $kids 2>/dev/null || true
	# the coordinator must be gone, not a zombie, or the new start refuses
	# (PID 1 may reap it lazily)
	wait_until 30 eval "! kill -0 $cpid" || fail "seed $SEED: killed coordinator $cpid gone"
	for p in $kids; do
		wait_until 20 eval "! pid_running $p" || fail "seed $SEED: killed worker $p gone"
	done
}

# prop_converge MAX SYNC... : repl_converge, keeping every run's stderr in
# $SEED_DIR/conv.ROUND.SYNC.err.  A round is quiet when every run is good
# with I/U/D 0/0/0 and no conflict AND no shadow table changed: an apply of
# a version whose row every node already holds (the vector of a conflict
# decided on one node, travelling one hop per run) writes only shadow rows
# and reports 0/0/0, so counts alone stopped a round early and the check
# below ("no echo") saw the last hop.
prop_converge() {
	local max=$1 round s quiet n sums before=''
	shift
	for n in "${TOPO_NODES[@]}"; do
		before+="$(repl_shadow_sums "$n")"$'\n'
	done
	for ((round = 1; round <= max; round++)); do
		quiet=1
		for s in "$@"; do
			repl_run "$s"
			printf '%s\n' "$RUN_ERR" >"$SEED_DIR/conv.$round.$s.err"
			if [[ $RUN_RC != 0 || "$RUN_I/$RUN_U/$RUN_D/$RUN_C" != 0/0/0/0 ]]; then
				quiet=0
			fi
		done
		sums=''
		for n in "${TOPO_NODES[@]}"; do
			sums+="$(repl_shadow_sums "$n")"$'\n'
		done
		[[ $sums == "$before" ]] || quiet=0
		before=$sums
		REPL_ROUNDS=$round
		if ((quiet)); then
			return 0
		fi
	done
	return 1
}

# ---- checks ------------------------------------------------------------------------------------
# seed_diag KEYS : the engine's lines about these keys (one a line): run
# logs, conflict log
seed_diag() {
	local key
	while IFS= read -r key; do
		[[ -n $key ]] || continue
		echo "== engine lines mentioning $key:"
		grep -rF -- "$key" "$SEED_DIR"/run.* "$SEED_DIR"/conv.* 2>/dev/null | sed "s|^$SEED_DIR/||" | awk 'NR <= 16' || true
		meta </dev/null "SELECT format('conflict log #%s %s: %s %s -> %s, winner %s (%s); local (%s) %s; remote (%s) %s',
		             id, to_char(resolved_at, 'HH24:MI:SS.US'), sync, remote_node, local_node, winner, rule,
		             local_node, coalesce(local_row::text, 'deleted'), remote_node, coalesce(remote_row::text, 'deleted'))
		        FROM repctl.conflict WHERE sync LIKE 'p${SEED}\\_%' AND pk = '$key'::jsonb ORDER BY id" | awk 'NR <= 12' || true
		for n in "${TOPO_NODES[@]}"; do
			repl_psql "$n" <<<"SELECT format('SELECT %L || '' shadow: '' || s::text FROM repctl.%I s WHERE to_jsonb(s) @> %L::jsonb',
			        '$n', shadow, '$key') FROM repctl.captured \\gexec" 2>&1 || true
		done
	done <<<"$1"
}

# key_diff NODE... : the keys that differ from the first node, and the
# engine's lines about the first three
key_diff() {
	local first=$1 n d keys
	shift
	for n in "$@"; do
		d=$(diff <(repl_psql "$first" -c "$ROWS_SQL") <(repl_psql "$n" -c "$ROWS_SQL") || true)
		[[ -n $d ]] || continue
		keys=$(grep -E '^[<>]' <<<"$d" | cut -d'|' -f2 | sort -u | awk 'NR <= 3')
		note "seed $SEED: keys that differ between $first (<) and $n (>):"
		grep -E '^[<>]' <<<"$d" | awk 'NR <= 20' | sed 's/^/#   /'
		seed_diag "$keys" | sed 's/^/#   /'
	done
}

# check_skip NODE... : keys never logged as conflicts are equal on every node
check_skip() {
	local first=$1 n a b d keys
	shift
	meta "SELECT DISTINCT table_name || '|' || pk::text || '|' FROM repctl.conflict
	        WHERE sync LIKE 'p${SEED}\\_%'" >"$SEED_DIR/conflict.keys"
	note "seed $SEED: $(wc -l <"$SEED_DIR/conflict.keys") key(s) logged as conflicts"
	a=$(repl_psql "$first" -c "$ROWS_SQL" | grep -vF -f "$SEED_DIR/conflict.keys" || true)
	for n in "$@"; do
		b=$(repl_psql "$n" -c "$ROWS_SQL" | grep -vF -f "$SEED_DIR/conflict.keys" || true)
		if [[ $a == "$b" ]]; then
			pass "seed $SEED: keys never in conflict equal on $first and $n"
		else
			d=$(diff <(printf '%s\n' "$a") <(printf '%s\n' "$b") || true)
			keys=$(grep -E '^[<>]' <<<"$d" | cut -d'|' -f2 | sort -u | awk 'NR <= 3')
			fail "seed $SEED: keys never in conflict equal on $first and $n" \
				"$d"$'\n'"(< $first, > $n)"$'\n'"$(seed_diag "$keys")"
		fi
	done
}

# check_oracle MODE NODE... : the writers' log against the final states
check_oracle() {
	local mode=$1 n out res keys
	shift
	: >"$SEED_DIR/writes"
	local states=()
	for n in "${TOPO_NODES[@]}"; do
		repl_psql "$n" -c "$WLOG_SQL" >>"$SEED_DIR/writes"
	done
	for n in "$@"; do
		repl_psql "$n" -c "$STATE_SQL" >"$SEED_DIR/state.$n"
		states+=("$SEED_DIR/state.$n")
	done
	out=$(python3 "$TEST_TMP/oracle.py" "$mode" "$((SEP_MS * 1000))" "$SEED_DIR/writes" "${states[@]}")
	res=$(head -n 1 <<<"$out")
	note "seed $SEED: $(wc -l <"$SEED_DIR/writes") committed writes; oracle: $res"
	if [[ $(wc -l <<<"$out") == 1 ]]; then
		pass "seed $SEED: every row a committed write, nothing lost$([[ $mode == latest ]] && echo ', the last write wins')"
	else
		keys=$(tail -n +2 <<<"$out" | grep -oE '\{[^}]*\}' | sort -u | awk 'NR <= 3')
		fail "seed $SEED: every row a committed write, nothing lost$([[ $mode == latest ]] && echo ', the last write wins')" \
			"$(tail -n +2 <<<"$out" | awk 'NR <= 20')"$'\n'"$(seed_diag "$keys")"
	fi
	if [[ $mode == latest && ${res#checked } == 0\ * ]]; then
		fail "seed $SEED: the latest oracle checked some keys" "$res"
	fi
}

# ---- one seed ----------------------------------------------------------------------------------
TOPOLOGIES=(pair chain star starm mesh)
STRATEGIES=(latest source target latest first skip)
FAILED_SEEDS=()
PREV_SYNCS=()
PREV_NODES=()

one_seed() {
	SEED=$1
	local t0=$EPOCHREALTIME fails0=$_T_FAILS
	local ph=$t0 phases=''
	SEED_DIR=$TEST_TMP/seed.$SEED
	mkdir -p "$SEED_DIR"
	RANDOM=$SEED
	local topo=${PROP_TOPOLOGY:-${TOPOLOGIES[(SEED + SEED / 6) % 5]}}
	local strat=${PROP_STRATEGY:-${STRATEGIES[SEED % 6]}} daemon=0
	if ((DAEMON_MODE < 0)); then
		r 4
		((R == 0)) && daemon=1
	else
		daemon=$DAEMON_MODE
	fi
	local A=a$SEED B=b$SEED C=c$SEED herd=h$SEED s
	note "==== seed $SEED: $topo, $strat$( ((daemon)) && echo ', daemon killed and restarted') (rerun: PROP_SEED_BASE=$SEED PROP_SEEDS=1)"

	# the previous seed's syncs, nodes and databases go (the daemon runs
	# only this seed's syncs, and a long soak does not fill the disk)
	for s in "${PREV_SYNCS[@]}"; do
		run_repctl remove sync "$s" >/dev/null
	done
	for s in "${PREV_NODES[@]}"; do
		run_repctl remove database "$s" >/dev/null
		pg_sql "${REPL_CLUSTER[$s]}" postgres "DROP DATABASE IF EXISTS ${REPL_DBNAME[$s]} WITH (FORCE)" || true
	done
	PREV_NODES=()
	prop_add_node "$A" a "prop$SEED" "$herd"
	prop_add_node "$B" b "prop$SEED" "$herd"
	prop_add_node "$C" c "prop$SEED" "$herd"

	PREV_NODES=("$A" "$B" "$C")
	local p=p${SEED}_
	SYNCS=()
	PAIRS=()
	TOPO_NODES=("$A" "$B" "$C")
	pair_syncs() { # X Y NAME
		add_sync "$p$3" herd="$herd" dbs="$1:source,$2:target" conflict_strategy="$strat"
		add_sync "$p${3:1:1}${3:0:1}" herd="$herd" dbs="$2:source,$1:target" conflict_strategy="$strat"
		SYNCS+=("$p$3" "$p${3:1:1}${3:0:1}")
		PAIRS+=("$p$3 $p${3:1:1}${3:0:1}")
	}
	case $topo in
	pair)
		pair_syncs "$A" "$B" ab
		TOPO_NODES=("$A" "$B")
		;;
	chain)
		pair_syncs "$A" "$B" ab
		pair_syncs "$B" "$C" bc
		;;
	star)
		pair_syncs "$A" "$B" ab
		pair_syncs "$A" "$C" ac
		;;
	starm)
		add_sync "${p}mab" herd="$herd" dbs="$A:source,$B:source" conflict_strategy="$strat"
		add_sync "${p}mac" herd="$herd" dbs="$A:source,$C:source" conflict_strategy="$strat"
		SYNCS+=("${p}mab" "${p}mac")
		;;
	mesh)
		local order=("$A" "$B" "$C") i j tmp
		for ((i = 2; i > 0; i--)); do
			r $((i + 1))
			j=$R
			tmp=${order[i]} order[i]=${order[j]} order[j]=$tmp
		done
		note "  mesh order: ${order[*]}"
		add_sync "${p}m" herd="$herd" dbs="${order[0]}:source,${order[1]}:source,${order[2]}:source" \
			conflict_strategy="$strat"
		SYNCS+=("${p}m")
		;;
	esac
	PREV_SYNCS=("${SYNCS[@]}")
	# lap NAME : append "NAME S.Ds" (time since the previous lap) to $phases
	lap() {
		local now=$EPOCHREALTIME d
		d=$((${now/[.,]/} - ${ph/[.,]/}))
		phases+="$1 $((d / 1000000)).$((d / 100000 % 10))s, "
		ph=$now
	}
	lap setup

	# ---- writers and overlapping runs ----
	local wpids=() n i=0 w s2 pr
	for n in "${TOPO_NODES[@]}"; do
		for w in 1 2; do
			i=$((i + 1))
			repl_psql "$n" -c "SET application_name = 'prop-writer'" \
				-c "CALL prop_writer('$n/$w', $(((SEED * 7 + i) % 1000)) / 1000.0, $WRITE_SECS, $NSONGS, $NPL, $NPOS)" \
				>"$SEED_DIR/writer.$n.$w.log" 2>&1 &
			wpids+=($!)
		done
	done
	BG_N=0 BG_KILLED=0 BG_FAILED=0 BG_LOGS=''
	local daemon_phase=0 t_start=$EPOCHREALTIME kill_at
	r 2000
	kill_at=$((R + 500)) # ms into the write phase: the daemon kill
	if ((daemon)); then
		repl_start
		daemon_phase=1
	fi
	writers_running() {
		local w
		for w in "${wpids[@]}"; do
			pid_running "$w" && return 0
		done
		return 1
	}
	while writers_running; do
		if (($(_t_now_usec) - ${t_start/[.,]/} > (WRITE_SECS + 60) * 1000000)); then
			fail "seed $SEED: the writers finish" "still running after $((WRITE_SECS + 60)) s; cancelled"
			for n in "${TOPO_NODES[@]}"; do
				repl_sql "$n" "SELECT pg_cancel_backend(pid) FROM pg_stat_activity
				               WHERE application_name = 'prop-writer'" >/dev/null || true
			done
			break
		fi
		if ((daemon_phase == 1)) && (($(_t_now_usec) - ${t_start/[.,]/} > kill_at * 1000)); then
			daemon_kill
			repl_start
			daemon_phase=2
		fi
		if (($(bg_running) < MAX_BG)); then
			r 10
			s=${SYNCS[RANDOM % ${#SYNCS[@]}]}
			if ((R < 3)); then
				bg_run "$s"
			elif ((R < 5)); then
				bg_run "$s"
				bg_run "$s"
			elif ((R < 7)); then
				if ((${#PAIRS[@]} > 0)); then
					pr=${PAIRS[RANDOM % ${#PAIRS[@]}]}
					bg_run "${pr% *}"
					bg_run "${pr#* }"
				else
					s2=${SYNCS[RANDOM % ${#SYNCS[@]}]}
					bg_run "$s"
					bg_run "$s2"
				fi
			else
				bg_kill "$s"
			fi
		fi
		# mostly short gaps between runs, now and then a longer one (the
		# nodes drift apart, more keys change on both sides)
		r 10
		if ((R == 0)); then
			r 1000
			sleep "$((R / 1000 + 0)).$(printf '%03d' $((R % 1000)))"
		else
			r 300
			sleep "0.$(printf '%03d' "$R")"
		fi
	done
	for n in "${wpids[@]}"; do
		wait "$n" || fail "seed $SEED: writer $n" "$(cat "$SEED_DIR"/writer.*.log)"
	done
	lap writes
	# no local write was held up for long by the replication
	local longest
	longest=$({ grep -ho 'longest operation: [0-9.]* s.*' "$SEED_DIR"/writer.*.log || true; } | sort -t' ' -k3 -g | tail -n 1)
	note "seed $SEED: writers' $longest"
	if [[ -n $longest ]] && awk -v l="${longest#longest operation: }" -v m="$STALL_SECS" \
		'BEGIN { exit !(l + 0 > m + 0) }'; then
		fail "seed $SEED: no writer operation took more than $STALL_SECS s" \
			"$longest"$'\n'"$({ grep -h 'deciding again\|deadlock detected\|attempts' "$SEED_DIR"/run.*.err || true; } | awk 'NR <= 12')"
	fi
	# at least one run killed at a random moment
	for ((i = 0; i < 20 && BG_KILLED == 0; i++)); do
		bg_kill "${SYNCS[RANDOM % ${#SYNCS[@]}]}"
	done
	((BG_KILLED > 0)) || fail "seed $SEED: a run was SIGKILLed"
	bg_wait_all
	lap 'runs end'
	if ((daemon)); then
		run_repctl stop
		[[ $RC == 0 ]] || fail "seed $SEED: repctl stop" "$ERR"
		lap stop
	fi
	note "seed $SEED: $BG_N background runs, $BG_KILLED SIGKILLed, $BG_FAILED failed (allowed while writing)"
	[[ -z $BG_LOGS ]] || note "  e.g. $(head -n 1 <<<"$BG_LOGS")"

	# ---- converge and check ----
	local save=$REPCTL
	REPCTL=$TEST_TMP/repctl-watchdog
	if prop_converge 10 "${SYNCS[@]}" >"$SEED_DIR/converge.log"; then
		pass "seed $SEED: quiet after $REPL_ROUNDS round(s)"
	else
		fail "seed $SEED: quiet within 10 rounds" "$(tail -n 20 "$SEED_DIR/converge.log")"
	fi
	if grep -q '^not ok' "$SEED_DIR/converge.log"; then
		grep -A 30 '^not ok' "$SEED_DIR/converge.log" | awk 'NR <= 60'
	fi
	lap converge
	if [[ $strat == skip ]]; then
		check_skip "${TOPO_NODES[@]}"
	else
		local f1=$_T_FAILS
		repl_same "seed $SEED: converged ($topo, $strat)" "${TOPO_NODES[@]}"
		((_T_FAILS == f1)) || key_diff "${TOPO_NODES[@]}"
	fi
	check_oracle "$strat" "${TOPO_NODES[@]}"
	local before='' after='' bad=''
	for n in "${TOPO_NODES[@]}"; do
		before+="$(repl_shadow_sums "$n")"$'\n'
	done
	for s in "${SYNCS[@]}"; do
		repl_run "$s" >>"$SEED_DIR/converge.log"
		[[ "$RUN_RC/$RUN_I/$RUN_U/$RUN_D/$RUN_C" == 0/0/0/0/0 ]] ||
			bad+="$s: exit $RUN_RC, $RUN_OUT $RUN_ERR"$'\n'
	done
	for n in "${TOPO_NODES[@]}"; do
		after+="$(repl_shadow_sums "$n")"$'\n'
	done
	is "$bad" '' "seed $SEED: a further round writes nothing"
	is "$after" "$before" "seed $SEED: shadow tables unchanged by a further round (no echo)"
	REPCTL=$save
	lap checks

	local secs
	secs=$((($(_t_now_usec) - ${t0/[.,]/}) / 1000000))
	if ((_T_FAILS > fails0)); then
		FAILED_SEEDS+=("$SEED($topo/$strat)")
		note "seed $SEED FAILED ($topo, $strat) in ${secs}s (${phases%, }); rerun: PROP_SEED_BASE=$SEED PROP_SEEDS=1 REPCTL_BIN=$REPCTL bash $0"
	else
		note "seed $SEED passed in ${secs}s (${phases%, })"
	fi
}

# PROP_CONFIRM=1 (the default; `make soak` sets 0): a seed that fails is
# run once more.  A failure that comes back fails the test; one that does
# not is reported as FLAKY (the first run's output stays above, with the
# rerun command) and not counted, so that a rare timing-dependent failure
# does not fail `make check` while `make soak` stays strict.
FLAKY_SEEDS=()
for ((seed = SEED_BASE; seed < SEED_BASE + SEEDS; seed++)); do
	f0=$_T_FAILS
	one_seed "$seed"
	if ((_T_FAILS > f0 && ${PROP_CONFIRM:-1})); then
		note "seed $seed failed: running it again, to tell a reproducible failure from a timing-dependent one"
		f1=$_T_FAILS
		one_seed "$seed"
		if ((_T_FAILS == f1)); then
			note "FLAKY: seed $seed failed once and passed when run again: not counted here (make soak is strict); see its first run above"
			FLAKY_SEEDS+=("$seed")
			_T_FAILS=$f0
			unset 'FAILED_SEEDS[-1]'
		fi
	fi
done
((${#FLAKY_SEEDS[@]} == 0)) || note "flaky seeds (failed once, passed when run again): ${FLAKY_SEEDS[*]}"
if ((${#FAILED_SEEDS[@]} > 0)); then
	note "failing seeds: ${FAILED_SEEDS[*]}"
else
	note "all $SEEDS seed(s) passed"
fi
repl_no_daemon_san

done_testing
