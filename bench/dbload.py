#!/usr/bin/python3
"""bench/dbload.py - the database workloads of the benchmark.

  dbload.py init DSN --scale quick|full
      create the schema (artists, albums, songs, plays: bigint keys, foreign
      keys, updated_at) and the deterministic preload in database DSN; run on
      a template database of every node so that all nodes start identical

  dbload.py run --tool T --layout L --a DSN --b DSN --c DSN --scale S
                --out FILE [--pidcmd CMD] [--workloads W1,W2,...]
      run the workloads against nodes A and B (replicated by the tool under
      test) and C (the same schema without any trigger: the raw baseline),
      append one JSON object per measurement to FILE, and print a progress
      line per measurement on stderr

Convergence is always decided by querying the nodes: a cheap query first
(row count of a key range, or an aggregate), then ordered checksums
(md5 of every row in key order) that must be equal on A and B; the tool's
own status is never consulted.  Times are wall-clock (time.monotonic) on
this client, taken right after the writer's COMMIT returned.
"""
import argparse
import io
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import psycopg2

SCALES = {
    # preload sizes; W1 sizes; W2 transactions; W3 rows; W4 trials; M rows; repetitions
    "quick": dict(artists=500, albums=2000, songs=10000, plays=10000,
                  w1=[10000], w1_reps=1, w2_tx=1000, w2_clients=4, w3_rows=1000,
                  w4_trials=5, m_rows=20000, timeout=120),
    "full": dict(artists=2000, albums=10000, songs=100000, plays=100000,
                 w1=[10000, 100000], w1_reps=3, w2_tx=10000, w2_clients=4, w3_rows=1000,
                 w4_trials=20, m_rows=1000000, timeout=900),
}

SCHEMA = """
CREATE TABLE artists (
    id         bigint PRIMARY KEY,
    name       text NOT NULL,
    country    text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE albums (
    id         bigint PRIMARY KEY,
    artist_id  bigint NOT NULL REFERENCES artists (id),
    title      text NOT NULL,
    year       integer,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX albums_artist_id ON albums (artist_id);
CREATE TABLE songs (
    id         bigint PRIMARY KEY,
    album_id   bigint NOT NULL REFERENCES albums (id),
    title      text NOT NULL,
    track      integer,
    duration_s numeric(8,2),
    play_count bigint NOT NULL DEFAULT 0,
    path       text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX songs_album_id ON songs (album_id);
CREATE TABLE plays (
    id         bigint PRIMARY KEY,
    song_id    bigint NOT NULL REFERENCES songs (id),
    played_at  timestamptz NOT NULL,
    client     text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX plays_song_id ON plays (song_id);
"""

TABLES = ["artists", "albums", "songs", "plays"]
T0 = "timestamptz '2024-01-01 00:00:00+00'"

# Key ranges used by the workloads, far above the preload.
W1_BASE = 10_000_000     # W1 batches on A (and, + C_OFFSET, the same insert on C)
M_BASE = 200_000_000     # the M batch
W4_BASE = 50_000_000     # W4 one-row inserts (plays)
PROBE_BASE = 90_000_000  # readiness probes of the drivers
C_OFFSET = 500_000_000   # C's copy of an insert uses other keys than the raw COPY


def log(msg):
    print("# " + msg, file=sys.stderr, flush=True)


def connect(dsn, autocommit=True):
    # named, so that the connection counts of M can leave the benchmark's
    # own sessions out
    c = psycopg2.connect(dsn, application_name="dbload")
    c.autocommit = autocommit
    with c.cursor() as cur:
        cur.execute("SET TimeZone = 'UTC'")
    return c


def q1(conn, sql, args=None):
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchone()


def ex(conn, sql, args=None):
    with conn.cursor() as cur:
        cur.execute(sql, args)


def songs_insert_sql(lo, hi, nalb):
    return (f"INSERT INTO songs (id, album_id, title, track, duration_s, play_count, path, "
            f"created_at, updated_at) SELECT g, 1 + g % {nalb}, 'song ' || md5(g::text), "
            f"1 + g % 14, (120 + g % 300) + 0.5, 0, "
            f"'/music/' || (g % {nalb}) || '/' || md5(g::text) || '.flac', now(), now() "
            f"FROM generate_series({lo}, {hi}) g")


def cmd_init(a):
    s = SCALES[a.scale]
    c = connect(a.dsn, autocommit=False)
    with c.cursor() as cur:
        cur.execute(SCHEMA)
        cur.execute(f"INSERT INTO artists SELECT g, 'artist ' || g, "
                    f"(ARRAY['FR','US','GB','DE','BR'])[1 + g % 5], {T0} + g * interval '1 s', "
                    f"{T0} + g * interval '1 s' FROM generate_series(1, {s['artists']}) g")
        cur.execute(f"INSERT INTO albums SELECT g, 1 + g % {s['artists']}, 'album ' || md5(g::text), "
                    f"1960 + g % 60, {T0} + g * interval '1 s', {T0} + g * interval '1 s' "
                    f"FROM generate_series(1, {s['albums']}) g")
        cur.execute(f"INSERT INTO songs SELECT g, 1 + g % {s['albums']}, 'song ' || md5(g::text), "
                    f"1 + g % 14, (120 + g % 300) + 0.5, 0, "
                    f"'/music/' || (g % {s['albums']}) || '/' || md5(g::text) || '.flac', "
                    f"{T0} + g * interval '1 s', {T0} + g * interval '1 s' "
                    f"FROM generate_series(1, {s['songs']}) g")
        cur.execute(f"INSERT INTO plays SELECT g, 1 + g % {s['songs']}, {T0} + g * interval '1 min', "
                    f"'jukebox', {T0} + g * interval '1 min', {T0} + g * interval '1 min' "
                    f"FROM generate_series(1, {s['plays']}) g")
    c.commit()
    c.autocommit = True
    ex(c, "VACUUM ANALYZE")
    c.close()


# ------------------------------------------------------------------ helpers --

def checksum(conn, table, lo=None, hi=None):
    where = "" if lo is None else f" WHERE t.id BETWEEN {int(lo)} AND {int(hi)}"
    # md5 of the rows' md5s in key order: equal output = equal rows (and the
    # aggregated string stays 32 bytes a row, whatever the row size)
    return q1(conn, f"SELECT count(*), md5(coalesce(string_agg(md5(t::text), '' ORDER BY t.id), '')) "
                    f"FROM {table} t{where}")


def poll(fn, timeout, interval):
    """Call fn until it returns true; the monotonic time when it did, or None."""
    deadline = time.monotonic() + timeout
    while True:
        if fn():
            return time.monotonic()
        if time.monotonic() > deadline:
            return None
        time.sleep(interval)


def pct(values, p):
    """Nearest-rank percentile."""
    v = sorted(values)
    if not v:
        return None
    k = max(0, min(len(v) - 1, int(-(-p * len(v) // 100)) - 1))
    return v[k]


class Bench:
    def __init__(self, a):
        self.a = a
        self.s = SCALES[a.scale]
        self.A = connect(a.a)
        self.B = connect(a.b)
        self.C = connect(a.c)
        self.w1_next = W1_BASE
        self.tmp = tempfile.mkdtemp(prefix="dbload.")

    def record(self, workload, **kv):
        rec = dict(kind="db", tool=self.a.tool, layout=self.a.layout, workload=workload,
                   time=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                   load1=round(os.getloadavg()[0], 2))
        rec.update(kv)
        with open(self.a.out, "a") as f:
            f.write(json.dumps(rec, sort_keys=True) + "\n")
        brief = " ".join(f"{k}={v}" for k, v in kv.items() if not isinstance(v, (list, dict)))
        log(f"{self.a.tool}[{self.a.layout}] {workload} {brief}")

    def all_same(self):
        for t in TABLES:
            if checksum(self.A, t) != checksum(self.B, t):
                return False
        return True

    def settle(self, timeout=None):
        """Wait until A and B hold the same rows in every table (and stay so for 0.5 s)."""
        timeout = timeout or self.s["timeout"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.all_same():
                time.sleep(0.5)
                if self.all_same():
                    return True
            time.sleep(0.2)
        return False

    def wait_range(self, lo, hi, n, timeout):
        """Seconds (monotonic time) when songs lo..hi on B equal A's, by count then checksum."""
        sql = "SELECT count(*) FROM songs WHERE id BETWEEN %s AND %s"
        t = poll(lambda: q1(self.B, sql, (lo, hi))[0] == n, timeout, 0.01)
        if t is None:
            return None, "timeout"
        want = checksum(self.A, "songs", lo, hi)
        if checksum(self.B, "songs", lo, hi) == want:
            return t, None
        t = poll(lambda: checksum(self.B, "songs", lo, hi) == want, timeout, 0.05)
        return t, None if t else "rows arrived but differ (checksum)"

    # ----------------------------------------------------------- workloads --

    def w1(self):
        nalb = self.s["albums"]
        for n in self.s["w1"]:
            for rep in range(1, self.s["w1_reps"] + 1):
                lo = self.w1_next
                hi = lo + n - 1
                self.w1_next = lo + max(n, 1_000_000)
                # the same insert on the trigger-less node C (other keys)
                t0 = time.monotonic()
                ex(self.C, songs_insert_sql(lo + C_OFFSET, hi + C_OFFSET, nalb))
                ins_c = time.monotonic() - t0
                # the insert on A, captured by the tool's triggers
                t0 = time.monotonic()
                ex(self.A, songs_insert_sql(lo, hi, nalb))
                t_commit = time.monotonic()
                ins_a = t_commit - t0
                t, err = self.wait_range(lo, hi, n, self.s["timeout"])
                after = None if t is None else t - t_commit
                # the limit: a raw insert of the same rows (COPY) into C
                buf = io.StringIO()
                with self.A.cursor() as cur:
                    cur.copy_expert(f"COPY (SELECT * FROM songs WHERE id BETWEEN {lo} AND {hi} "
                                    f"ORDER BY id) TO STDOUT", buf)
                buf.seek(0)
                self.C.autocommit = False
                t0 = time.monotonic()
                with self.C.cursor() as cur:
                    cur.copy_expert("COPY songs FROM STDIN", buf)
                self.C.commit()
                raw = time.monotonic() - t0
                self.C.autocommit = True
                self.record("W1", n=n, rep=rep, seconds=after, insert_a_s=ins_a, insert_c_s=ins_c,
                            raw_copy_c_s=raw, capture_ratio=ins_a / ins_c,
                            after_commit_vs_raw=None if after is None else after / raw,
                            after_commit_vs_insert_c=None if after is None else after / ins_c,
                            ok=err is None, error=err)
                if not self.settle():
                    log("W1: nodes did not settle")

    def pgbench(self, dsn, ntx, clients, script):
        p = dict(x.split("=", 1) for x in dsn.split())
        nper = max(1, ntx // clients)
        cmd = ["/usr/lib/postgresql/15/bin/pgbench", "-n", "-c", str(clients), "-j", str(clients),
               "-t", str(nper), "-f", script, "-D", f"nsongs={self.s['songs']}",
               "-h", p["host"], "-p", p["port"], "-U", p["user"], p["dbname"]]
        t0 = time.monotonic()
        r = subprocess.run(cmd, capture_output=True, text=True)
        t1 = time.monotonic()
        if r.returncode != 0:
            raise RuntimeError("pgbench failed: " + r.stderr.strip()[-400:])
        m = re.search(r"tps = ([0-9.]+) \(without initial", r.stdout)
        return t0, t1, float(m.group(1)) if m else None, nper * clients

    def w2(self):
        script = os.path.join(self.tmp, "w2.sql")
        with open(script, "w") as f:
            f.write("\\set id random(1, :nsongs)\n"
                    "UPDATE songs SET play_count = play_count + 1, updated_at = clock_timestamp() "
                    "WHERE id = :id;\n")
        ntx, clients = self.s["w2_tx"], self.s["w2_clients"]
        reps = 3 if self.a.scale == "full" else 1
        for rep in range(1, reps + 1):
            _, _, tps_c, _ = self.pgbench(self.a.c, ntx, clients, script)
            t0, t_end, tps_a, done = self.pgbench(self.a.a, ntx, clients, script)
            fp_sql = "SELECT sum(play_count), max(updated_at)::text, count(*) FROM songs"
            want = q1(self.A, fp_sql)
            t = poll(lambda: q1(self.B, fp_sql) == want, self.s["timeout"], 0.02)
            err = None
            if t is None:
                err = "timeout"
            else:
                full = checksum(self.A, "songs")
                if checksum(self.B, "songs") != full:
                    t = poll(lambda: checksum(self.B, "songs") == full, self.s["timeout"], 0.1)
                    err = None if t else "songs differ (checksum)"
            self.record("W2", n=done, clients=clients, rep=rep,
                        seconds=None if t is None else t - t_end,
                        total_s=None if t is None else t - t0, pgbench_s=t_end - t0,
                        tps_a=tps_a, tps_c=tps_c,
                        capture_ratio=(tps_c / tps_a) if tps_a and tps_c else None,
                        ok=err is None, error=err)
            if not self.settle():
                log("W2: nodes did not settle")

    def concurrent_commit(self, sql_a, sql_b, delay_b=0.01):
        """Run sql_a on A and sql_b on B in open transactions, then commit both
        at the same instant (B delay_b seconds after A).  Returns the monotonic
        time when both commits had returned."""
        ca = connect(self.a.a, autocommit=False)
        cb = connect(self.a.b, autocommit=False)
        ex(ca, sql_a)
        ex(cb, sql_b)
        bar = threading.Barrier(2)
        ends = {}

        def go(name, conn, delay):
            bar.wait()
            if delay:
                time.sleep(delay)
            conn.commit()
            ends[name] = time.monotonic()

        ths = [threading.Thread(target=go, args=("a", ca, 0)),
               threading.Thread(target=go, args=("b", cb, delay_b))]
        for th in ths:
            th.start()
        for th in ths:
            th.join()
        ca.close()
        cb.close()
        return max(ends.values())

    def wait_converged(self, lo, hi, timeout):
        """Time when songs lo..hi are equal on A and B and still equal 1 s later."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            t = poll(lambda: checksum(self.A, "songs", lo, hi) == checksum(self.B, "songs", lo, hi),
                     max(0.1, deadline - time.monotonic()), 0.05)
            if t is None:
                return None
            time.sleep(1.0 if self.a.scale == "full" else 0.5)
            if checksum(self.A, "songs", lo, hi) == checksum(self.B, "songs", lo, hi):
                return t
        return None

    def w3(self):
        rows = self.s["w3_rows"]
        timeout = 30  # Bucardo's one-way pair may never converge: do not wait long
        # W3: every row updated on both nodes; A's updated_at is 1 s newer, but A
        # commits first (B 10 ms later): the newer updated_at must win everywhere.
        lo, hi = 1001, 1000 + rows
        newer = "now() + interval '1 s'"
        t_commit = self.concurrent_commit(
            f"UPDATE songs SET title = 'w3 A ' || id, updated_at = {newer} WHERE id BETWEEN {lo} AND {hi}",
            f"UPDATE songs SET title = 'w3 B ' || id, updated_at = now() WHERE id BETWEEN {lo} AND {hi}")
        t = self.wait_converged(lo, hi, timeout)
        good = [q1(c, f"SELECT count(*) FROM songs WHERE id BETWEEN {lo} AND {hi} "
                      f"AND title = 'w3 A ' || id")[0] for c in (self.A, self.B)]
        self.record("W3", n=rows, seconds=None if t is None else t - t_commit,
                    converged=t is not None, newer_wins_rows=min(good),
                    newer_wins_a=good[0], newer_wins_b=good[1],
                    ok=t is not None and min(good) == rows,
                    error=None if t is not None else f"not converged after {timeout} s")
        self.settle(timeout)
        # W3M: half the rows changed A-then-B (B's updated_at newer: B must win),
        # half B-then-A (A must win), all in one transaction per node.
        lo, hi = 1001 + rows, 1000 + 2 * rows
        mid = lo + rows // 2
        t_commit = self.concurrent_commit(
            f"UPDATE songs SET title = 'w3m A ' || id, updated_at = CASE WHEN id < {mid} "
            f"THEN now() ELSE {newer} END WHERE id BETWEEN {lo} AND {hi}",
            f"UPDATE songs SET title = 'w3m B ' || id, updated_at = CASE WHEN id < {mid} "
            f"THEN {newer} ELSE now() END WHERE id BETWEEN {lo} AND {hi}")
        t = self.wait_converged(lo, hi, timeout)
        good = [q1(c, f"SELECT count(*) FROM songs WHERE id BETWEEN {lo} AND {hi} AND title = "
                      f"CASE WHEN id < {mid} THEN 'w3m B ' ELSE 'w3m A ' END || id")[0]
                for c in (self.A, self.B)]
        self.record("W3M", n=rows, seconds=None if t is None else t - t_commit,
                    converged=t is not None, newer_wins_rows=min(good),
                    newer_wins_a=good[0], newer_wins_b=good[1],
                    ok=t is not None and min(good) == rows,
                    error=None if t is not None else f"not converged after {timeout} s")
        self.settle(timeout)

    def w4(self):
        lags = []
        rnd = random.Random(4)
        sel = "SELECT 1 FROM plays WHERE id = %s"
        for i in range(self.s["w4_trials"]):
            # idle between trials (a random gap, so no trial lines up with a timer)
            time.sleep((0.3 if self.a.scale == "full" else 0.2) + rnd.random() * 0.4)
            k = W4_BASE + i
            ex(self.A, "INSERT INTO plays (id, song_id, played_at, client) VALUES (%s, 1, now(), 'w4')", (k,))
            t1 = time.monotonic()
            t = poll(lambda: q1(self.B, sel, (k,)) is not None, 30, 0.002)
            if t is None:
                self.record("W4", n=i + 1, seconds=None, ok=False, error="trial timed out after 30 s")
                return
            lags.append(t - t1)
        self.record("W4", n=len(lags), seconds=statistics.median(lags), median_s=statistics.median(lags),
                    p90_s=pct(lags, 90), min_s=min(lags), max_s=max(lags),
                    trials=[round(x, 4) for x in lags], ok=True, error=None)

    def pids(self):
        if not self.a.pidcmd:
            return []
        r = subprocess.run(["bash", "-c", self.a.pidcmd], capture_output=True, text=True)
        return [int(x) for x in r.stdout.split() if x.isdigit()]

    @staticmethod
    def cpu_ticks(pid):
        """utime + stime of a process, in clock ticks (0 once it is gone)."""
        try:
            with open(f"/proc/{pid}/stat") as f:
                st = f.read()
            fields = st[st.rindex(")") + 2:].split()
            return int(fields[11]) + int(fields[12])
        except (OSError, ValueError, IndexError):
            return 0

    @staticmethod
    def server_ticks(pms):
        """{postmaster: ticks of itself and of the children it reaped} and
        {child: ticks} for every live child of the postmasters pms."""
        own, kids = {}, {}
        for pm in pms:
            try:
                with open(f"/proc/{pm}/stat") as f:
                    st = f.read()
                x = st[st.rindex(")") + 2:].split()
                own[pm] = sum(int(v) for v in x[11:15])  # utime stime cutime cstime
            except (OSError, ValueError):
                own[pm] = 0
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/stat") as f:
                    st = f.read()
                x = st[st.rindex(")") + 2:].split()
                if int(x[1]) in own:
                    kids[int(d)] = int(x[11]) + int(x[12])
            except (OSError, ValueError, IndexError):
                pass
        return own, kids

    # Sessions on the replicated clusters A and B that are not the benchmark's
    # own: the tool's connections (client backends, and WAL senders for
    # logical decoding), and the background workers of an extension.
    CONNS_SQL = ("SELECT count(*) FILTER (WHERE backend_type IN ('client backend', 'walsender')), "
                 "count(*) FILTER (WHERE backend_type NOT IN ('client backend', 'walsender', "
                 "'autovacuum launcher', 'autovacuum worker', 'logical replication launcher', "
                 "'background writer', 'checkpointer', 'walwriter', 'archiver', 'startup', "
                 "'walreceiver', 'standalone backend')) "
                 "FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
                 "AND coalesce(application_name, '') NOT IN ('dbload', 'dbload-mon', 'repctl-test')")

    @staticmethod
    def status_kb(pid, key):
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith(key + ":"):
                        return int(line.split()[1])
        except OSError:
            pass
        return 0

    def m(self):
        n = self.s["m_rows"]
        lo, hi = M_BASE, M_BASE + n - 1
        pids = self.pids()
        base = sum(self.status_kb(p, "VmRSS") for p in pids)
        # anonymous: VmRSS less the shared memory a process has touched (for
        # a server process, the shared buffers, the server's anyway) and the
        # mapped files (binary, libraries, shared with the other processes)
        base_priv = sum(self.status_kb(p, "RssAnon") for p in pids)
        peak = {"sum": base, "priv": base_priv,
                "proc": max([self.status_kb(p, "VmRSS") for p in pids] or [0])}
        hwm = {}
        # CPU: ticks of every process seen, from the first sample (a process
        # already there) or from 0 (a process started during the batch)
        cpu0 = {p: self.cpu_ticks(p) for p in pids}
        cpu_last = dict(cpu0)
        # the servers' CPU (every process of the clusters, those that ended
        # in the window through their postmaster's cutime/cstime): the work a
        # tool has the servers do (capture triggers, its SQL, decoding, an
        # in-server apply) whatever process does it
        pms = [int(x) for x in (self.a.server_pids or "").split() if x.isdigit()]
        srv0 = self.server_ticks(pms) if pms else None
        mons = []
        try:
            mons = [psycopg2.connect(d, application_name="dbload-mon") for d in (self.a.a, self.a.b)]
            for mc in mons:
                mc.autocommit = True
        except psycopg2.Error:
            mons = []

        def conns():
            try:
                v = [q1(mc, self.CONNS_SQL) for mc in mons]
                return sum(x[0] for x in v), sum(x[1] for x in v)
            except psycopg2.Error:
                return None, None
        conns_before, workers_before = conns() if mons else (None, None)
        peak["conns"], peak["workers"] = conns_before, workers_before
        stop = threading.Event()

        def sampler():
            nonlocal pids
            last_refresh = time.monotonic()
            while not stop.is_set():
                if time.monotonic() - last_refresh > 0.5:
                    pids = self.pids()
                    last_refresh = time.monotonic()
                    if mons:
                        c, w = conns()
                        if c is not None:
                            peak["conns"] = max(peak["conns"] or 0, c)
                            peak["workers"] = max(peak["workers"] or 0, w)
                vals = [self.status_kb(p, "VmRSS") for p in pids]
                priv = [self.status_kb(p, "RssAnon") for p in pids]
                for p in pids:
                    h = self.status_kb(p, "VmHWM")
                    if h:
                        hwm[p] = max(hwm.get(p, 0), h)
                    t = self.cpu_ticks(p)
                    if t:
                        cpu0.setdefault(p, 0)
                        cpu_last[p] = max(cpu_last.get(p, 0), t)
                peak["sum"] = max(peak["sum"], sum(vals))
                peak["priv"] = max(peak["priv"], sum(priv))
                peak["proc"] = max([peak["proc"]] + vals)
                time.sleep(0.02)

        th = threading.Thread(target=sampler, daemon=True)
        th.start()
        t0 = time.monotonic()
        ex(self.A, songs_insert_sql(lo, hi, self.s["albums"]))
        t_commit = time.monotonic()
        t, err = self.wait_range(lo, hi, n, self.s["timeout"])
        time.sleep(0.5)
        stop.set()
        th.join()
        t_end = time.monotonic()
        for mc in mons:
            mc.close()
        tck = os.sysconf("SC_CLK_TCK")
        cpu_s = sum(cpu_last[p] - cpu0.get(p, 0) for p in cpu_last) / tck
        server_cpu_s = total_cpu_s = None
        if srv0 is not None:
            own1, kids1 = self.server_ticks(pms)
            own0, kids0 = srv0
            srv = (sum(own1[p] - own0[p] for p in own1)
                   + sum(v - kids0.get(p, 0) for p, v in kids1.items())
                   - sum(v for p, v in kids0.items() if p not in kids1))
            server_cpu_s = srv / tck
            # the tool's own processes outside the servers (pglogical has none)
            outside = sum(cpu_last[p] - cpu0.get(p, 0) for p in cpu_last if p not in kids0 and p not in kids1)
            total_cpu_s = server_cpu_s + outside / tck

        def cmdline(p):
            try:
                with open(f"/proc/{p}/cmdline", "rb") as f:
                    return f.read().replace(b"\0", b" ").decode(errors="replace").strip()[:80]
            except OSError:
                return "(ended)"
        procs = [[p, cmdline(p), round((cpu_last[p] - cpu0.get(p, 0)) / tck, 2), p in cpu0] for p in sorted(cpu_last)]
        self.record("M", n=n, seconds=None if t is None else t - t_commit, insert_a_s=t_commit - t0,
                    rss_before_mb=base / 1024, peak_rss_mb=peak["sum"] / 1024,
                    rss_anon_before_mb=base_priv / 1024, peak_rss_anon_mb=peak["priv"] / 1024,
                    cpu_s=cpu_s, cpu_pct=100 * cpu_s / (t_end - t0), server_cpu_s=server_cpu_s,
                    total_cpu_s=total_cpu_s, window_s=t_end - t0, procs=procs,
                    conns_before=conns_before, peak_conns=peak["conns"],
                    workers_before=workers_before, peak_workers=peak["workers"],
                    peak_proc_rss_mb=peak["proc"] / 1024,
                    peak_proc_hwm_mb=max(hwm.values() or [0]) / 1024, processes=len(pids),
                    ok=err is None and bool(pids), error=err if pids else "no daemon process found")
        self.settle()

    def run(self):
        order = [w.strip() for w in self.a.workloads.split(",") if w.strip()]
        funcs = {"W4": self.w4, "W1": self.w1, "W2": self.w2, "W3": self.w3, "M": self.m}
        for w in order:
            try:
                funcs[w]()
            except Exception as e:  # report, go on with the next workload
                msg = " ".join(f"{type(e).__name__}: {e}".split())
                self.record(w, seconds=None, ok=False, error=msg[:500])
                for c in (self.A, self.B, self.C):
                    try:
                        c.rollback()
                        c.autocommit = True
                    except Exception:
                        pass


def cmd_run(a):
    Bench(a).run()


def cmd_probe(a):
    """Insert a probe row (artists) on --a and wait until it is on --b."""
    A, B = connect(a.a), connect(a.b)
    k = PROBE_BASE + int(time.time() * 1000) % 1_000_000 * 10 + random.randrange(10)
    ex(A, "INSERT INTO artists (id, name) VALUES (%s, 'probe')", (k,))
    t1 = time.monotonic()
    t = poll(lambda: q1(B, "SELECT 1 FROM artists WHERE id = %s", (k,)) is not None, a.timeout, 0.05)
    if t is None:
        print(f"probe {k} not on B after {a.timeout} s", file=sys.stderr)
        sys.exit(1)
    print(f"{t - t1:.3f}")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("init")
    p.add_argument("dsn")
    p.add_argument("--scale", default="full", choices=SCALES)
    p = sub.add_parser("run")
    for k in ("tool", "layout", "a", "b", "c", "out"):
        p.add_argument("--" + k, required=True)
    p.add_argument("--scale", default="full", choices=SCALES)
    p.add_argument("--pidcmd", default="")
    p.add_argument("--server-pids", default="", help="postmaster PIDs whose processes' CPU M adds up")
    p.add_argument("--workloads", default="W4,W1,W2,W3,M")
    p = sub.add_parser("probe")
    p.add_argument("--a", required=True)
    p.add_argument("--b", required=True)
    p.add_argument("--timeout", type=float, default=60)
    a = ap.parse_args()
    {"init": cmd_init, "run": cmd_run, "probe": cmd_probe}[a.cmd](a)


if __name__ == "__main__":
    main()
