#!/usr/bin/python3
"""bench/fleet.py - the measurements of the fleet workload (bench/fleet.sh).

  fleet.py schema DSN
      create the small Rails-like schema of every fleet node in database DSN
      (a template the node databases are copied from)

  fleet.py measure --n N --nodes FILE --clusters FILE --meta-cluster C
                   --hub-cluster C --meta-db DB --state-dir DIR --repctl BIN
                   --scale quick|full --out FILE
      start the coordinator (`repctl start`, environment inherited) on a star
      of N clients around the node `hub`, already configured, and measure:
      connections per cluster and on the metadata database (steady state and
      peak), the coordinator's processes and their resident memory (steady
      and peak), their CPU over an idle period, how long a one-row change on
      one client takes to reach every other client, and how long a client
      whose database was unreachable while the others wrote takes to catch
      up once it is back.  Appends one JSON object (kind=fleet) to FILE and
      prints progress lines ("# ...") on stdout.  A phase that fails is
      recorded with its error and the next phase still runs.

FILE formats (tab-separated, written by fleet.sh):
  nodes:    NAME  CLUSTER  DSN          (first line: the hub)
  clusters: NAME  ADMIN-DSN  POSTMASTER-PID

Connections are counted in pg_stat_activity (client backends, this
program's own sessions left out by their application_name).  Times are
wall-clock (time.monotonic) on this client, taken right after the writer's
COMMIT returned; nodes are polled every 20 ms.  The benchmark reports: it
never judges, and it exits 0 once it has measured (even when the tool fails).
"""
import argparse
import json
import math
import os
import random
import re
import statistics
import subprocess
import sys
import threading
import time

import psycopg2

APP = "repctl-fleet-bench"

SCALES = {
    "quick": dict(settle_timeout=90, quiet=2, idle_s=10, trials=3, trial_timeout=15,
                  offline_s=10, offline_rows=60, catchup_timeout=30),
    "full": dict(settle_timeout=240, quiet=5, idle_s=20, trials=10, trial_timeout=30,
                 offline_s=60, offline_rows=300, catchup_timeout=60),
}

SCHEMA = """
CREATE TABLE users (
    id         bigint PRIMARY KEY,
    email      text NOT NULL,
    name       text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE posts (
    id         bigint PRIMARY KEY,
    user_id    bigint NOT NULL,
    title      text,
    body       text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX posts_user_id ON posts (user_id);
CREATE TABLE comments (
    id         bigint PRIMARY KEY,
    post_id    bigint NOT NULL,
    body       text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX comments_post_id ON comments (post_id);
CREATE TABLE settings (
    key        text PRIMARY KEY,
    value      text,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE schema_migrations (version varchar PRIMARY KEY);
CREATE TABLE ar_internal_metadata (
    key        varchar PRIMARY KEY,
    value      varchar,
    created_at timestamp(6) NOT NULL,
    updated_at timestamp(6) NOT NULL
);
INSERT INTO schema_migrations VALUES ('20240101000000'), ('20240201000000');
INSERT INTO ar_internal_metadata VALUES ('environment', 'production', now(), now());
"""

CLK_TCK = os.sysconf("SC_CLK_TCK")


def say(msg):
    print(f"# {time.strftime('%H:%M:%S', time.gmtime())}  {msg}", flush=True)


def connect(dsn):
    c = psycopg2.connect(dsn, application_name=APP, connect_timeout=10)
    c.autocommit = True
    return c


def q1(conn, sql, args=None):
    with conn.cursor() as cur:
        cur.execute(sql, args)
        row = cur.fetchone()
        return row[0] if row else None


# ------------------------------------------------------------------ /proc --

def proc_table():
    """pid -> (ppid, utime+stime ticks, cutime+cstime ticks, rss kB)."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                s = f.read()
        except OSError:
            continue
        rest = s[s.rindex(")") + 2:].split()
        # rest[0] = state (field 3); utime = field 14 -> rest[11]
        if rest[0] == "Z":
            continue
        ppid = int(rest[1])
        ticks = int(rest[11]) + int(rest[12])
        cticks = int(rest[13]) + int(rest[14])
        rss = int(rest[21]) * os.sysconf("SC_PAGE_SIZE") // 1024
        out[int(d)] = (ppid, ticks, cticks, rss)
    return out


def tree(table, root):
    """root and all its descendants present in table."""
    if root not in table:
        return []
    kids = {}
    for pid, v in table.items():
        kids.setdefault(v[0], []).append(pid)
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def vmrss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def coord_pid(state_dir):
    try:
        with open(os.path.join(state_dir, "repctl.pid")) as f:
            p = f.read().split()[0]
            return int(p) if p.isdigit() else None
    except (OSError, IndexError):
        return None


def tree_rss(root):
    """(processes, total VmRSS MB) of root and its descendants."""
    t = proc_table()
    pids = tree(t, root)
    return len(pids), sum(vmrss_kb(p) for p in pids) / 1024.0


def tree_cpu_ticks(roots, with_children=True):
    """CPU ticks of the trees under roots: every live process's own time plus,
    for the roots, the time of the children they reaped."""
    t = proc_table()
    total = 0
    for r in roots:
        if r is None:
            continue
        for p in tree(t, r):
            total += t[p][1]
            if with_children:
                total += t[p][2]
    return total


# ---------------------------------------------------------------- sampler --

class Sampler(threading.Thread):
    """Every 0.25 s: client connections per cluster (and on the metadata and
    hub databases), the coordinator's processes and RSS; keeps the peaks."""

    def __init__(self, clusters, meta_cluster, meta_db, hub_cluster, hub_db, state_dir):
        super().__init__(daemon=True)
        self.conns = {name: connect(dsn) for name, (dsn, _pid) in clusters.items()}
        self.meta_cluster, self.meta_db = meta_cluster, meta_db
        self.hub_cluster, self.hub_db = hub_cluster, hub_db
        self.state_dir = state_dir
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.peak = {}          # cluster -> max total
        self.peak_meta_db = 0
        self.peak_hub_db = 0
        self.peak_rss = 0.0
        self.peak_procs = 0
        self.errors = []

    def counts(self):
        """cluster -> {datname: n} right now."""
        out = {}
        for name, c in self.conns.items():
            with c.cursor() as cur:
                cur.execute("SELECT coalesce(datname, ''), count(*) FROM pg_stat_activity "
                            "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() "
                            "AND coalesce(application_name, '') <> %s GROUP BY 1", (APP,))
                out[name] = dict(cur.fetchall())
        return out

    def sample(self):
        cs = self.counts()
        p = coord_pid(self.state_dir)
        procs, rss = tree_rss(p) if p else (0, 0.0)
        with self.lock:
            for name, per_db in cs.items():
                self.peak[name] = max(self.peak.get(name, 0), sum(per_db.values()))
            self.peak_meta_db = max(self.peak_meta_db, cs[self.meta_cluster].get(self.meta_db, 0))
            self.peak_hub_db = max(self.peak_hub_db, cs[self.hub_cluster].get(self.hub_db, 0))
            self.peak_rss = max(self.peak_rss, rss)
            self.peak_procs = max(self.peak_procs, procs)
        return cs

    def run(self):
        while not self.stop.is_set():
            try:
                self.sample()
            except Exception as e:  # keep sampling; remember the first few
                if len(self.errors) < 5:
                    self.errors.append(str(e).strip()[:200])
            self.stop.wait(0.25)


# ------------------------------------------------------------------ phases --

def repctl(binary, *args, timeout=300):
    t0 = time.monotonic()
    try:
        p = subprocess.run([binary, *args], capture_output=True, text=True, timeout=timeout)
        return p.returncode, p.stdout, p.stderr, time.monotonic() - t0
    except subprocess.TimeoutExpired:
        return -1, "", f"timed out after {timeout} s", time.monotonic() - t0


def settle(rec, binary, n_syncs, timeout):
    """Wait until every sync has a good run (repctl status --json)."""
    t0 = time.monotonic()
    good, last_err = 0, ""
    while time.monotonic() - t0 < timeout:
        rc, out, err, _ = repctl(binary, "status", "--json", timeout=60)
        if rc in (0, 1, 2) and out.strip().startswith("{"):
            try:
                d = json.loads(out)
                good = sum(1 for s in d.get("syncs", []) if s.get("last_good"))
                if good >= n_syncs:
                    rec["settle_s"] = round(time.monotonic() - t0, 2)
                    rec["syncs_good"] = good
                    return None
            except ValueError as e:
                last_err = f"status --json: {e}"
        else:
            last_err = f"status --json exit {rc}: {(err or out).strip()[-200:]}"
        time.sleep(2)
    rec["syncs_good"] = good
    rec["settle_s"] = None
    return (f"only {good} of {n_syncs} syncs had a good run after {timeout} s"
            + (f" ({last_err})" if last_err else ""))


def pct(vals, p):
    """nearest-rank percentile"""
    s = sorted(vals)
    return s[max(0, math.ceil(p / 100.0 * len(s)) - 1)]


def propagation(rec, hub, clients, sc, base_id):
    """One-row insert on a client; seconds until every other client has it."""
    conns = {}
    for name, dsn in clients:
        conns[name] = connect(dsn)
    hubc = connect(hub)
    names = [n for n, _ in clients]
    times, hub_times, timeouts = [], [], 0
    for t in range(sc["trials"]):
        src = names[(t * 7) % len(names)]
        key = base_id + t
        others = [n for n in names if n != src]
        with conns[src].cursor() as cur:
            cur.execute("INSERT INTO users (id, email, name) VALUES (%s, %s, %s)",
                        (key, f"u{key}@fleet.test", f"from {src}"))
        t_commit = time.monotonic()
        pending, t_hub = set(others), None
        deadline = t_commit + sc["trial_timeout"]
        while pending and time.monotonic() < deadline:
            if t_hub is None and q1(hubc, "SELECT 1 FROM users WHERE id = %s", (key,)):
                t_hub = time.monotonic() - t_commit
            for n in list(pending):
                if q1(conns[n], "SELECT 1 FROM users WHERE id = %s", (key,)):
                    pending.discard(n)
            if pending:
                time.sleep(0.02)
        dt = time.monotonic() - t_commit
        if pending:
            timeouts += 1
            say(f"propagation trial {t + 1}: {len(pending)} of {len(others)} clients still "
                f"without the row after {sc['trial_timeout']} s")
            times.append(float(sc["trial_timeout"]))
        else:
            times.append(dt)
            hub_s = "n/a" if t_hub is None else f"{t_hub:.3f} s"
            say(f"propagation trial {t + 1}: {src} -> all {len(others)} others in {dt:.3f} s"
                f" (hub: {hub_s})")
        if t_hub is not None:
            hub_times.append(t_hub)
        time.sleep(random.uniform(0.3, 0.7))
    for c in list(conns.values()) + [hubc]:
        c.close()
    rec["prop_trials"] = len(times)
    rec["prop_timeouts"] = timeouts
    rec["prop_p50_s"] = round(statistics.median(times), 4)
    rec["prop_p95_s"] = round(pct(times, 95), 4)
    rec["prop_max_s"] = round(max(times), 4)
    rec["prop_min_s"] = round(min(times), 4)
    if hub_times:
        rec["prop_hub_p50_s"] = round(statistics.median(hub_times), 4)
    if timeouts:
        return (f"{timeouts} of {len(times)} one-row changes had not reached every client after "
                f"{sc['trial_timeout']} s (counted as {sc['trial_timeout']} s)")
    return None


def catchup(rec, hub, clients, clusters_by_node, cluster_dsn, sc, base_id):
    """One client unreachable (ALLOW_CONNECTIONS false, sessions terminated)
    while the hub and other clients write; seconds after it is back until it
    holds every row."""
    off_name, off_dsn = clients[-1]
    off_db = psycopg2.extensions.parse_dsn(off_dsn)["dbname"]
    admin = connect(cluster_dsn[clusters_by_node[off_name]])
    writers = [("hub", hub)] + [c for c in clients[:-1]][:9]
    wconns = [(n, connect(d)) for n, d in writers]
    with admin.cursor() as cur:
        cur.execute(f'ALTER DATABASE "{off_db}" ALLOW_CONNECTIONS false')
        cur.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()", (off_db,))
        killed = cur.fetchone()[0]
    t_off = time.monotonic()
    rows, keys = sc["offline_rows"], []
    rounds = 10
    per_round = max(1, math.ceil(rows / (rounds * len(wconns))))
    say(f"catch-up: {off_name} unreachable ({killed} sessions terminated) for {sc['offline_s']} s "
        f"while {len(writers)} nodes write {rounds * per_round * len(wconns)} rows")
    k = base_id
    for r in range(rounds):
        for n, c in wconns:
            batch = list(range(k, k + per_round))
            k += per_round
            with c.cursor() as cur:
                cur.execute("INSERT INTO posts (id, user_id, title, body) "
                            "SELECT g, 1, 'offline ' || %s, repeat('x', 200) FROM unnest(%s::bigint[]) g",
                            (n, batch))
            keys.extend(batch)
        # spread the writes over the first 80 % of the outage
        target = t_off + (r + 1) * 0.8 * sc["offline_s"] / rounds
        time.sleep(max(0.0, target - time.monotonic()))
    # the sessions the coordinator may have managed to open meanwhile
    with admin.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (off_db,))
        rec["catchup_sessions_during_outage"] = cur.fetchone()[0]
    time.sleep(max(0.0, t_off + sc["offline_s"] - time.monotonic()))
    # how many of the rows the hub had when the client came back (the last
    # writes were made 20 % of the outage earlier); the catch-up time counts
    # from the return either way
    hubc = connect(hub)
    lo, hi = base_id, k - 1
    rec["catchup_hub_rows_at_return"] = q1(
        hubc, "SELECT count(*) FROM posts WHERE id BETWEEN %s AND %s", (lo, hi))
    rec["catchup_rows"] = len(keys)
    rec["catchup_offline_s"] = round(time.monotonic() - t_off, 1)
    with admin.cursor() as cur:
        cur.execute(f'ALTER DATABASE "{off_db}" ALLOW_CONNECTIONS true')
    t_back = time.monotonic()
    say(f"catch-up: {off_name} reachable again after {rec['catchup_offline_s']} s (the hub had "
        f"{rec['catchup_hub_rows_at_return']} of the {len(keys)} rows)")
    offc, have = None, -1
    while time.monotonic() - t_back < sc["catchup_timeout"]:
        try:
            if offc is None:
                offc = connect(off_dsn)
            have = q1(offc, "SELECT count(*) FROM posts WHERE id BETWEEN %s AND %s", (lo, hi))
            if have >= len(keys):
                break
        except psycopg2.Error:
            offc = None
        time.sleep(0.1)
    dt = time.monotonic() - t_back
    for _, c in wconns:
        c.close()
    hubc.close()
    admin.close()
    rec["catchup_have_rows"] = have
    if have >= len(keys):
        rec["catchup_s"] = round(dt, 2)
        say(f"catch-up: {off_name} holds all {len(keys)} rows {dt:.2f} s after it came back")
        offc.close()
        return None
    rec["catchup_s"] = None
    if offc is not None:
        offc.close()
    say(f"catch-up: {off_name} holds {have} of {len(keys)} rows {dt:.0f} s after it came back")
    return (f"{off_name} held {max(have, 0)} of {len(keys)} rows {sc['catchup_timeout']} s after it "
            f"came back (not caught up)")


def log_errors(state_dir):
    """Counts of connection-exhaustion and other errors in the daemon log."""
    out = dict(log_too_many_clients=0, log_errors=0)
    try:
        with open(os.path.join(state_dir, "repctl.log"), errors="replace") as f:
            for line in f:
                if re.search(r"too many clients|remaining connection slots|out of connections", line):
                    out["log_too_many_clients"] += 1
                if re.search(r"\b(ERROR|error|FATAL|failed)\b", line):
                    out["log_errors"] += 1
    except OSError:
        pass
    return out


def cmd_measure(a):
    sc = SCALES[a.scale]
    nodes = [line.rstrip("\n").split("\t") for line in open(a.nodes) if line.strip()]
    clusters = {}
    for line in open(a.clusters):
        if line.strip():
            name, dsn, pid = line.rstrip("\n").split("\t")
            clusters[name] = (dsn, int(pid) if pid.isdigit() else None)
    hub_name, _hub_cluster, hub_dsn = nodes[0]
    clients = [(n, d) for n, _c, d in nodes[1:]]
    node_cluster = {n: c for n, c, _d in nodes}
    hub_db = psycopg2.extensions.parse_dsn(hub_dsn)["dbname"]
    n = len(clients)
    rec = dict(kind="fleet", tool="repctl", layout="star", workload="fleet", n=n,
               clusters=len(clusters), client_clusters=len({node_cluster[c] for c, _ in clients}),
               load1_start=round(os.getloadavg()[0], 2))
    errors = []
    samp = Sampler(clusters, a.meta_cluster, a.meta_db, a.hub_cluster, hub_db, a.state_dir)
    samp.start()

    # ---- start
    rc, out, err, secs = repctl(a.repctl, "start", timeout=300)
    rec["start_rc"], rec["start_s"] = rc, round(secs, 2)
    say(f"repctl start: exit {rc} in {secs:.1f} s")
    if rc != 0:
        errors.append(f"repctl start exit {rc}: {(err or out).strip()[-300:]}")
    cpid = coord_pid(a.state_dir)
    if cpid is None:
        errors.append("no coordinator pid file")
    # ---- settle
    e = settle(rec, a.repctl, 2 * n, sc["settle_timeout"])
    if e:
        errors.append(e)
    say(f"settle: {rec.get('syncs_good')} of {2 * n} syncs had a good run "
        f"(after {rec.get('settle_s')} s)")
    time.sleep(sc["quiet"])

    # ---- steady state
    try:
        cs = samp.sample()
        rec["hub_cluster_conns"] = sum(cs[a.hub_cluster].values())
        rec["hub_db_conns"] = cs[a.hub_cluster].get(hub_db, 0)
        rec["meta_db_conns"] = cs[a.meta_cluster].get(a.meta_db, 0)
        rec["meta_cluster_conns"] = sum(cs[a.meta_cluster].values())
        rec["client_cluster_conns"] = {c: sum(v.values()) for c, v in cs.items()
                                       if c not in (a.hub_cluster, a.meta_cluster)}
        procs, rss = tree_rss(cpid) if cpid else (0, 0.0)
        rec["procs"], rec["rss_mb"] = procs, round(rss, 1)
        say(f"steady: hub cluster {rec['hub_cluster_conns']} connections (hub db "
            f"{rec['hub_db_conns']}), metadata db {rec['meta_db_conns']}, client clusters "
            f"{rec['client_cluster_conns']}; coordinator {procs} processes, {rss:.1f} MB RSS")
    except Exception as ex:
        errors.append(f"steady state: {ex}")

    # ---- idle CPU
    try:
        pm = [pid for _dsn, pid in clusters.values()]
        c0, s0, t0 = tree_cpu_ticks([cpid]), tree_cpu_ticks(pm), time.monotonic()
        time.sleep(sc["idle_s"])
        c1, s1, t1 = tree_cpu_ticks([cpid]), tree_cpu_ticks(pm), time.monotonic()
        rec["idle_window_s"] = round(t1 - t0, 1)
        rec["idle_cpu_pct"] = round(100.0 * (c1 - c0) / CLK_TCK / (t1 - t0), 2)
        rec["idle_server_cpu_pct"] = round(100.0 * (s1 - s0) / CLK_TCK / (t1 - t0), 2)
        say(f"idle: coordinator + children {rec['idle_cpu_pct']} % of a core over "
            f"{rec['idle_window_s']} s (PostgreSQL servers {rec['idle_server_cpu_pct']} %)")
    except Exception as ex:
        errors.append(f"idle CPU: {ex}")

    # ---- propagation
    try:
        e = propagation(rec, hub_dsn, clients, sc, 9_000_000_000 + 1000 * n)
        if e:
            errors.append(e)
        say(f"propagation: p50 {rec['prop_p50_s']} s, p95 {rec['prop_p95_s']} s, "
            f"max {rec['prop_max_s']} s over {rec['prop_trials']} trials")
    except Exception as ex:
        errors.append(f"propagation: {str(ex).strip()[:300]}")

    # ---- catch-up
    try:
        e = catchup(rec, hub_dsn, clients, node_cluster, {k: v[0] for k, v in clusters.items()},
                    sc, 8_000_000_000 + 100_000 * n)
        if e:
            errors.append(e)
    except Exception as ex:
        errors.append(f"catch-up: {str(ex).strip()[:300]}")

    samp.stop.set()
    samp.join(5)
    with samp.lock:
        rec["peak_hub_cluster_conns"] = samp.peak.get(a.hub_cluster)
        rec["peak_hub_db_conns"] = samp.peak_hub_db
        rec["peak_meta_db_conns"] = samp.peak_meta_db
        rec["peak_cluster_conns"] = dict(samp.peak)
        rec["peak_rss_mb"] = round(samp.peak_rss, 1)
        rec["peak_procs"] = samp.peak_procs
    if samp.errors:
        rec["sampler_errors"] = samp.errors
    rec.update(log_errors(a.state_dir))
    rec["load1_end"] = round(os.getloadavg()[0], 2)
    rec["max_connections"] = a.max_connections
    rec["ok"] = not errors
    if errors:
        rec["error"] = "; ".join(errors)[:1500]
        say("errors: " + rec["error"])
    with open(a.out, "a") as f:
        f.write(json.dumps(rec, sort_keys=True) + "\n")
    say(f"fleet n={n}: recorded")


def cmd_schema(a):
    c = connect(a.dsn)
    with c.cursor() as cur:
        cur.execute(SCHEMA)
    c.close()


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("schema")
    p.add_argument("dsn")
    p = sub.add_parser("measure")
    p.add_argument("--n", type=int)
    p.add_argument("--nodes", required=True)
    p.add_argument("--clusters", required=True)
    p.add_argument("--meta-cluster", required=True)
    p.add_argument("--hub-cluster", required=True)
    p.add_argument("--meta-db", required=True)
    p.add_argument("--state-dir", required=True)
    p.add_argument("--repctl", required=True)
    p.add_argument("--scale", choices=SCALES, default="full")
    p.add_argument("--max-connections", type=int, default=0)
    p.add_argument("--out", required=True)
    a = ap.parse_args()
    {"schema": cmd_schema, "measure": cmd_measure}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
