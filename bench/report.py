#!/usr/bin/python3
"""bench/report.py - results of the benchmark.

  report.py add FILE KEY=VALUE...      append one JSON object to FILE (JSON
                                       lines); values that parse as numbers
                                       (or true/false) are stored as such
  report.py summary FILE [--json OUT]  print one line per tool and workload
                                       (medians over repetitions, min-max,
                                       ratios against the peers measured in
                                       the same run, and the targets), and
                                       write every record plus the summary
                                       rows to OUT
  report.py markdown OUT.json          the tables of docs/BENCHMARKS.md
                                       (the sections of the parts that ran)
"""
import argparse
import json
import statistics


def parse_value(v):
    if v in ("true", "false"):
        return v == "true"
    try:
        return int(v)
    except ValueError:
        pass
    try:
        return float(v)
    except ValueError:
        return v


def cmd_add(a):
    rec = {}
    for kv in a.kv:
        k, _, v = kv.partition("=")
        # a commit id may be all digits: keep it a string
        rec[k] = v if k.endswith("_commit") else parse_value(v)
    with open(a.file, "a") as f:
        f.write(json.dumps(rec, sort_keys=True) + "\n")


def load(path):
    with open(path) as f:
        if path.endswith(".json"):
            return json.load(f)["records"]
        return [json.loads(x) for x in f if x.strip()]


def med(vals):
    vals = [v for v in vals if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if not vals:
        return None, None, None
    return statistics.median(vals), min(vals), max(vals)


def fmt(x, unit=""):
    if x is None:
        return "n/a"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        if abs(x) >= 100:
            return f"{x:.0f}{unit}"
        if abs(x) >= 10:
            return f"{x:.1f}{unit}"
        if abs(x) >= 0.1:
            return f"{x:.2f}{unit}"
        if abs(x) >= 0.01 or x == 0:
            return f"{x:.3f}{unit}"
        return f"{x:.4f}{unit}"
    return f"{x}{unit}"


def ratio(a, b):
    if a is None or b is None or not b:
        return None
    return a / b


# Targets of the issue (ratios in one run): (label, function(row, peers) -> (value, limit, met))
def db_rows(recs):
    """Group the database records: (tool, layout, workload, n) -> aggregate row."""
    groups = {}
    for r in recs:
        if r.get("kind") != "db":
            continue
        key = (r["tool"], r.get("layout", "-"), r["workload"], r.get("n"))
        groups.setdefault(key, []).append(r)
    rows = []
    for (tool, layout, wl, n), rs in groups.items():
        row = dict(kind="db", tool=tool, layout=layout, workload=wl, n=n, runs=len(rs))
        for k in ("seconds", "insert_a_s", "insert_c_s", "raw_copy_c_s", "capture_ratio",
                  "after_commit_vs_raw", "after_commit_vs_insert_c", "total_s", "tps_a", "tps_c",
                  "median_s", "p90_s", "min_s", "max_s", "peak_rss_mb", "peak_proc_rss_mb",
                  "peak_proc_hwm_mb", "rss_before_mb", "newer_wins_rows", "rss_anon_before_mb",
                  "peak_rss_anon_mb", "cpu_s", "cpu_pct", "server_cpu_s", "total_cpu_s", "conns_before", "peak_conns",
                  "workers_before", "peak_workers"):
            m, lo, hi = med([x.get(k) for x in rs])
            if m is not None:
                row[k] = m
                if k in ("seconds",):
                    row["seconds_min"], row["seconds_max"] = lo, hi
        for k in ("converged",):
            vals = [x.get(k) for x in rs if k in x]
            if vals:
                row[k] = all(vals)
        for k in ("rss_coord_mb", "rss_agent_local_mb", "rss_agent_remote_mb", "rss_main_mb",
                  "rss_remote_mb"):  # F7: the peak over the repetitions
            v = [x.get(k) for x in rs if x.get(k) is not None]
            if v:
                row[k] = max(v)
        if "files" in rs[-1] and wl.startswith("F7"):
            row["files"] = rs[-1]["files"]
        row["ok"] = all(x.get("ok", False) for x in rs)
        errs = [x.get("error") for x in rs if x.get("error")]
        if errs:
            row["error"] = errs[0]
        rows.append(row)
    return rows


def files_rows(recs):
    groups = {}
    for r in recs:
        if r.get("kind") != "files" or r.get("tool") == "dataset":
            continue
        groups.setdefault((r["tool"], r["workload"]), []).append(r)
    rows = []
    for (tool, wl), rs in groups.items():
        row = dict(kind="files", tool=tool, workload=wl, runs=len(rs))
        for k in ("seconds", "ssh_bytes", "tool_bytes"):
            m, lo, hi = med([x.get(k) for x in rs])
            if m is not None:
                row[k] = m
                if k == "seconds":
                    row["seconds_min"], row["seconds_max"] = lo, hi
        for k in ("equal", "converged", "runs", "resurrected", "conflict_copy_both", "newer_at_name",
                  "both_versions_kept", "both_detected", "lost_on_b", "b_files_before", "rc",
                  "message", "summary"):
            if k in rs[-1]:
                row[k if k != "runs" else "sync_runs"] = rs[-1][k]
        for k in ("rss_coord_mb", "rss_agent_local_mb", "rss_agent_remote_mb", "rss_main_mb",
                  "rss_remote_mb"):  # F7: the peak over the repetitions
            v = [x.get(k) for x in rs if x.get(k) is not None]
            if v:
                row[k] = max(v)
        if "files" in rs[-1] and wl.startswith("F7"):
            row["files"] = rs[-1]["files"]
        row["ok"] = all(x.get("ok", False) for x in rs)
        errs = [x.get("error") for x in rs if x.get("error")]
        if errs:
            row["error"] = errs[0]
        rows.append(row)
    return rows


def fleet_rows(recs):
    """The fleet records (bench/fleet.py), one row per size n; a failed part's
    setup record is merged into the row of its n."""
    groups = {}
    for r in recs:
        if r.get("kind") == "fleet":
            groups.setdefault(r.get("n"), []).append(r)
    rows = []
    for n, rs in groups.items():
        row = dict(kind="fleet", tool="repctl", layout="star", workload="fleet", n=n, runs=len(rs))
        for x in rs:
            if x.get("workload") == "fleet":
                row.update({k: v for k, v in x.items() if k not in ("ok", "error", "workload")})
        row["measured"] = any(x.get("workload") == "fleet" for x in rs)
        for k in ("rss_coord_mb", "rss_agent_local_mb", "rss_agent_remote_mb", "rss_main_mb",
                  "rss_remote_mb"):  # F7: the peak over the repetitions
            v = [x.get(k) for x in rs if x.get(k) is not None]
            if v:
                row[k] = max(v)
        if "files" in rs[-1] and wl.startswith("F7"):
            row["files"] = rs[-1]["files"]
        row["ok"] = all(x.get("ok", False) for x in rs)
        errs = [x.get("error") for x in rs if x.get("error")]
        if errs:
            row["error"] = "; ".join(errs)
        rows.append(row)
    return rows


def find(rows, **kv):
    for r in rows:
        if all(r.get(k) == v for k, v in kv.items()):
            return r
    return None


# The database peers, in the order of the tables; pglogical has one layout
# (bidirectional, "multi"): its pair rows do not exist.
DB_PEERS = ("pglogical", "bucardo")


def annotate(rows):
    """Ratios against the peers of the same run, and the targets."""
    for r in rows:
        tg = []
        if r["kind"] == "db":
            key = "median_s" if r["workload"] == "W4" else "seconds"
            for pn in DB_PEERS:
                if r["tool"] == pn or (pn == "pglogical" and r["layout"] != "multi"):
                    continue
                peer = find(rows, kind="db", tool=pn, layout=r["layout"], workload=r["workload"], n=r["n"])
                r[f"ratio_vs_{pn}"] = ratio(r.get(key), peer.get(key)) if peer else None
                if r["workload"] == "M":
                    r[f"rss_ratio_vs_{pn}"] = ratio(r.get("peak_rss_mb"), peer.get("peak_rss_mb")) if peer else None
            wl = r["workload"]
            if r["tool"] == "repctl":
                # the goals of issue 17 against pglogical (multi-source only:
                # pglogical has no pair layout); n/a when it did not run
                if r["layout"] == "multi" and wl in ("W4", "W1", "W3", "W3M"):
                    what = {"W4": "idle lag", "W1": "after-commit", "W3": "convergence",
                            "W3M": "convergence"}[wl]
                    tg.append((f"{what} <= pglogical's", r.get("ratio_vs_pglogical"), 1.0))
                if wl == "W4":
                    tg.append(("idle lag median <= 50 ms", r.get("median_s"), 0.050))
                if wl == "W1":
                    tg.append(("capture cost <= 1.25x trigger-less insert", r.get("capture_ratio"), 1.25))
                    if r["n"] and r["n"] >= 100000:
                        tg.append(("after-commit <= 1.2x raw insert", r.get("after_commit_vs_raw"), 1.2))
                if wl == "W2":
                    tg.append(("tail after small transactions <= 100 ms", r.get("seconds"), 0.100))
                if wl == "M":
                    tg.append(("coordinator RSS <= 64 MB during the batch", r.get("peak_rss_mb"), 64))
                if wl in ("W3", "W3M"):
                    tg.append(("newer updated_at wins on every row", r.get("newer_wins_rows"), r["n"], ">="))
        else:
            wl = r["workload"]
            rs = find(rows, kind="files", tool="rsync", workload=wl)
            un = find(rows, kind="files", tool="unison", workload=wl)
            if r["tool"] != "rsync":
                r["ratio_vs_rsync"] = ratio(r.get("seconds"), rs.get("seconds")) if rs else None
                r["bytes_vs_rsync"] = ratio(r.get("ssh_bytes"), rs.get("ssh_bytes")) if rs else None
            if r["tool"] != "unison":
                r["ratio_vs_unison"] = ratio(r.get("seconds"), un.get("seconds")) if un else None
                r["bytes_vs_unison"] = ratio(r.get("ssh_bytes"), un.get("ssh_bytes")) if un else None
            if r["tool"] == "repctl":
                if wl == "F1":
                    tg.append(("initial sync <= 1.0x rsync's time", r.get("ratio_vs_rsync"), 1.0))
                if wl == "F2":
                    tg.append(("no-change run <= rsync's no-change time", r.get("ratio_vs_rsync"), 1.0))
                if wl == "F5":
                    tg.append(("overwrite <= 1.3 MB sent", mb(r.get("ssh_bytes")), 1.3))
                if wl == "F5i":
                    tg.append(("insert <= 1.5 MB sent", mb(r.get("ssh_bytes")), 1.5))
                    tg.append(("insert <= 2x rsync's time", r.get("ratio_vs_rsync"), 2.0))
                if wl == "F6":
                    tg.append(("rename <= 200 KB sent", kb(r.get("ssh_bytes")), 200))
                if wl == "P1":
                    tg.append(("both rewrites detected", r.get("both_detected"), True, "=="))
                if wl == "F7n":
                    tg.append(("library no-change run <= rsync's time", r.get("ratio_vs_rsync"), 1.0))
                if wl in ("F7", "F7n", "F7c"):
                    tg.append(("coordinator RSS <= 100 MB", r.get("rss_coord_mb"), 100))
                    tg.append(("agent RSS <= 100 MB (the larger of the two)",
                               max([x for x in (r.get("rss_agent_local_mb"), r.get("rss_agent_remote_mb"))
                                    if x is not None] or [None], key=lambda x: x or 0), 100))
        if r["kind"] == "fleet" and r.get("measured"):
            n = r["n"]
            tg.append((f"connections on the hub <= N + 10 = {n + 10} (peak)", r.get("peak_hub_cluster_conns"),
                       n + 10))
            tg.append(("coordinator RSS <= 150 MB in total (peak)", r.get("peak_rss_mb"), 150))
            tg.append(("idle CPU <= 1% of a core", r.get("idle_cpu_pct"), 1.0))
            tg.append(("one-row change on every client: p95 <= 2 s", r.get("prop_p95_s"), 2.0))
            # not caught up within the wait: missed, not n/a
            tg.append(("client back from an outage caught up <= 30 s", r.get("catchup_s"), 30,
                       "<=", False if r.get("catchup_s") is None and "catchup_rows" in r else None))
        r["targets"] = []
        for t in tg:
            label, val, lim = t[0], t[1], t[2]
            op = t[3] if len(t) > 3 else "<="
            if val is None:
                met = t[4] if len(t) > 4 else None
            elif op == "<=":
                met = val <= lim
            elif op == ">=":
                met = val >= lim
            else:
                met = val == lim
            r["targets"].append(dict(target=label, value=val, limit=lim, met=met))
    return rows


def mb(b):
    return None if b is None else b / 1e6


def kb(b):
    return None if b is None else b / 1e3


def line(r):
    parts = [r["tool"], r["workload"]]
    if r["kind"] == "fleet":
        parts.append(f"n={r['n']}")
        if r.get("measured"):
            parts.append(f"hub_conns={fmt(r.get('hub_cluster_conns'))} (peak {fmt(r.get('peak_hub_cluster_conns'))})"
                         f" meta_db_conns={fmt(r.get('meta_db_conns'))} (peak {fmt(r.get('peak_meta_db_conns'))})"
                         f" procs={fmt(r.get('procs'))} rss_mb={fmt(r.get('rss_mb'))}"
                         f" (peak {fmt(r.get('peak_rss_mb'))}) idle_cpu_pct={fmt(r.get('idle_cpu_pct'))}"
                         f" prop_p50={fmt(r.get('prop_p50_s'))} p95={fmt(r.get('prop_p95_s'))}"
                         f" max={fmt(r.get('prop_max_s'))} catchup={fmt(r.get('catchup_s'))}")
    elif r["kind"] == "db":
        parts.append(f"layout={r['layout']}")
        if r.get("n") is not None:
            parts.append(f"n={r['n']}")
        wl = r["workload"]
        if wl == "W4":
            parts.append(f"seconds={fmt(r.get('median_s'))} p90={fmt(r.get('p90_s'))}"
                         f" min={fmt(r.get('min_s'))} max={fmt(r.get('max_s'))}")
        else:
            s = f"seconds={fmt(r.get('seconds'))}"
            if r.get("runs", 1) > 1 and r.get("seconds_min") is not None:
                s += f" ({fmt(r['seconds_min'])}-{fmt(r['seconds_max'])}, {r['runs']} runs)"
            parts.append(s)
        for pn in DB_PEERS:
            if f"ratio_vs_{pn}" in r:
                parts.append(f"ratio_vs_{pn}={fmt(r[f'ratio_vs_{pn}'])}")
        if wl == "W1":
            parts.append(f"insert_a={fmt(r.get('insert_a_s'))} insert_c={fmt(r.get('insert_c_s'))}"
                         f" capture_ratio={fmt(r.get('capture_ratio'))}"
                         f" raw_copy_c={fmt(r.get('raw_copy_c_s'))}"
                         f" after_commit_vs_raw={fmt(r.get('after_commit_vs_raw'))}")
        if wl == "W2":
            parts.append(f"tail={fmt(r.get('seconds'))} total={fmt(r.get('total_s'))}"
                         f" tps_a={fmt(r.get('tps_a'))} tps_c={fmt(r.get('tps_c'))}")
        if wl in ("W3", "W3M"):
            parts.append(f"converged={fmt(r.get('converged'))} newer_wins={fmt(r.get('newer_wins_rows'))}/{r['n']}")
        if wl == "M":
            parts.append(f"peak_rss_mb={fmt(r.get('peak_rss_mb'))} before_mb={fmt(r.get('rss_before_mb'))}"
                         f" anon_mb={fmt(r.get('peak_rss_anon_mb'))}"
                         f" largest_process_hwm_mb={fmt(r.get('peak_proc_hwm_mb'))}"
                         f" cpu_s={fmt(r.get('cpu_s'))} servers_cpu_s={fmt(r.get('server_cpu_s'))}"
                         f" total_cpu_s={fmt(r.get('total_cpu_s'))} conns={fmt(r.get('conns_before'))}"
                         f" (peak {fmt(r.get('peak_conns'))}) workers={fmt(r.get('workers_before'))}"
                         f" (peak {fmt(r.get('peak_workers'))})")
    else:
        parts.append(f"seconds={fmt(r.get('seconds'))}")
        if r.get("runs", 1) > 1 and r.get("seconds_min") is not None:
            parts[-1] += f" ({fmt(r['seconds_min'])}-{fmt(r['seconds_max'])}, {r['runs']} runs)"
        parts.append(f"wire_bytes={r.get('ssh_bytes', 'n/a')}")
        for k in ("ratio_vs_rsync", "ratio_vs_unison", "bytes_vs_rsync"):
            if k in r:
                parts.append(f"{k}={fmt(r[k])}")
        for k in ("equal", "sync_runs", "converged", "resurrected", "conflict_copy_both",
                  "both_detected", "lost_on_b"):
            if k in r:
                parts.append(f"{k}={fmt(r[k])}")
    for t in r.get("targets", []):
        word = "n/a" if t["met"] is None else ("MET" if t["met"] else "MISSED")
        parts.append(f"[target {t['target']}: {word}]")
    if not r.get("ok", True) and r.get("error"):
        parts.append(f"error: {r['error'][:200]}")
    elif not r.get("ok", True):
        parts.append("(check failed)")
    return " ".join(parts)


def summarize(recs):
    rows = annotate(db_rows(recs) + files_rows(recs) + fleet_rows(recs))
    order = {w: i for i, w in enumerate(
        ["setup", "W1", "W2", "W3", "W3M", "W4", "M", "F1", "F2", "F3", "F4", "F5", "F5i", "F6", "P1", "P2",
         "F7", "F7n", "F7c", "fleet"])}
    tools = {t: i for i, t in enumerate(["repctl", "pglogical", "bucardo", "rsync", "unison"])}
    rows.sort(key=lambda r: (r["kind"], r.get("layout", ""), r.get("n") or 0 if r["kind"] == "fleet" else 0,
                             order.get(r["workload"], 99), r.get("n") or 0, tools.get(r["tool"], 9)))
    return rows


def cmd_summary(a):
    recs = load(a.file)
    rows = summarize(recs)
    meta = {}
    for r in recs:
        if r.get("kind") == "meta":
            meta.update({k: v for k, v in r.items() if k not in ("kind", "part", "seconds")})
            if "part" in r:
                meta[f"{r['part']}_seconds"] = r["seconds"]
    print("# ---- summary (" + ", ".join(f"{k}={meta[k]}" for k in ("mode", "stamp", "cores", "mem")
                                         if k in meta) + ")")
    for r in rows:
        print(line(r))
    mets = [t["met"] for r in rows for t in r["targets"]]
    if meta.get("pglogical_skipped"):
        print(f"# pglogical: not run ({meta['pglogical_skipped']})")
    print(f"# ---- targets (repctl): {mets.count(True)} met, {mets.count(False)} missed, "
          f"{mets.count(None)} n/a")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(dict(meta=meta, summary=rows, records=recs), f, indent=1, sort_keys=True)


def cell(r, key="seconds", unit=" s"):
    """median (min-max) of a row's figure, or n/a / the error."""
    if r is None:
        return "not run"
    v = r.get(key)
    if v is None:
        return "n/a" + (f" ({r['error'][:60]})" if r.get("error") else "")
    out = fmt(v, unit)
    if key == "seconds" and r.get("runs", 1) > 1 and r.get("seconds_min") is not None:
        out += f" ({fmt(r['seconds_min'])}–{fmt(r['seconds_max'])})"
    return out


def human_bytes(b):
    if b is None:
        return "n/a"
    if b >= 1e6:
        return f"{b / 1e6:.2f} MB"
    if b >= 1e3:
        return f"{b / 1e3:.1f} KB"
    return f"{b} B"


def cmd_markdown(a):
    d = json.load(open(a.file))
    rows, meta = d["summary"], d["meta"]
    out = []
    w = out.append
    w(f"Run `{meta.get('stamp')}` ({meta.get('mode')}), {meta.get('host')}: {meta.get('cpu')}, "
      f"{meta.get('cores')} cores, {meta.get('mem')}, {meta.get('os')}, kernel {meta.get('kernel')}. "
      f"PostgreSQL {meta.get('postgres')}, Bucardo {meta.get('bucardo')}, "
      f"pglogical {meta.get('pglogical', '(not in this run)')}, rsync {meta.get('rsync')}, "
      f"unison {meta.get('unison')}, {meta.get('openssh')}; {meta.get('repctl')} "
      f"(commit {meta.get('repctl_commit')}, {meta.get('repctl_dirty')} uncommitted source files). "
      f"Load average at start {meta.get('load_at_start')}, at end {meta.get('load_at_end')}. "
      f"Database part {meta.get('db_seconds', 'n/a')} s, file part {meta.get('files_seconds', 'n/a')} s, "
      f"fleet part {meta.get('fleet_seconds', 'n/a')} s, total {meta.get('total_seconds', 'n/a')} s."
      + (f" Database servers a, b, c: wal_level = logical, track_commit_timestamp = on, synchronous_commit = "
         f"{meta['db_synchronous_commit']}, fsync = off." if meta.get("db_synchronous_commit") else ""))
    w("")
    has_db = any(r["kind"] == "db" for r in rows)
    has_files = any(r["kind"] == "files" for r in rows)
    pgl_note = ("not run" if not meta.get("pglogical_skipped")
                else "not run (" + meta["pglogical_skipped"] + ")")
    for layout, title in (("multi", "one multi-source sync (A:source,B:source); pglogical: a subscription "
                                    "each way"),
                          ("pair", "two one-way syncs (A→B, B→A), as the archive guide; pglogical has no "
                                   "such layout")):
        if not has_db:
            break
        w(f"**Databases, {title}.** Seconds: median over the repetitions (min–max).")
        w("")
        w("| workload | repctl | pglogical | Bucardo | repctl / pglogical | repctl / Bucardo "
          "| detail (repctl; pglogical; Bucardo) |")
        w("|---|---|---|---|---|---|---|")
        keys = sorted({(r["workload"], r.get("n")) for r in rows
                       if r["kind"] == "db" and r["layout"] == layout and r["workload"] != "setup"},
                      key=lambda k: (["W1", "W2", "W3", "W3M", "W4", "M"].index(k[0])
                                     if k[0] in ["W1", "W2", "W3", "W3M", "W4", "M"] else 9, k[1] or 0))
        for wl, n in keys:
            rp = find(rows, kind="db", tool="repctl", layout=layout, workload=wl, n=n)
            pg = find(rows, kind="db", tool="pglogical", layout=layout, workload=wl, n=n)
            bu = find(rows, kind="db", tool="bucardo", layout=layout, workload=wl, n=n)
            label = {"W1": f"W1 insert n={n}: after commit until on B",
                     "W2": f"W2 {n} single-row updates (pgbench, 4 clients): tail after last commit",
                     "W3": f"W3 {n} rows updated on A and B at once: time to converge",
                     "W3M": f"W3M {n} rows, winner per row: time to converge",
                     "W4": f"W4 one-row insert, idle: lag (median of {n})",
                     "M": f"M {n}-row batch: after commit until on B"}.get(wl, wl)
            key = "median_s" if wl == "W4" else "seconds"

            def detail(r, absent="not run"):
                if r is None:
                    return absent
                if wl == "W1":
                    return (f"insert on A {fmt(r.get('insert_a_s'))} s = {fmt(r.get('capture_ratio'))}× C's; "
                            f"after commit = {fmt(r.get('after_commit_vs_raw'))}× raw COPY on C "
                            f"({fmt(r.get('raw_copy_c_s'))} s)")
                if wl == "W2":
                    return f"{fmt(r.get('tps_a'))} tps on A vs {fmt(r.get('tps_c'))} on C"
                if wl in ("W3", "W3M"):
                    return (f"converged {fmt(r.get('converged'))}, newer updated_at won on "
                            f"{fmt(r.get('newer_wins_rows'))}/{r['n']} rows")
                if wl == "W4":
                    return f"p90 {fmt(r.get('p90_s'))} s, min {fmt(r.get('min_s'))}, max {fmt(r.get('max_s'))}"
                if wl == "M":
                    out = (f"peak RSS {fmt(r.get('peak_rss_mb'))} MB (before {fmt(r.get('rss_before_mb'))}; "
                           f"largest process {fmt(r.get('peak_proc_hwm_mb'))} MB")
                    if r.get("peak_rss_anon_mb") is not None:
                        out += f"; anonymous {fmt(r.get('peak_rss_anon_mb'))} MB"
                    out += ")"
                    if r.get("cpu_s") is not None:
                        out += f", CPU {fmt(r.get('cpu_s'))} s"
                    if r.get("total_cpu_s") is not None:
                        out += (f" (with the servers' {fmt(r.get('server_cpu_s'))} s: "
                                f"{fmt(r.get('total_cpu_s'))} s in all)")
                    if r.get("conns_before") is not None:
                        out += (f", {fmt(r.get('conns_before'))} connections to A and B "
                                f"(peak {fmt(r.get('peak_conns'))})")
                        if r.get("peak_workers"):
                            out += f" + {fmt(r.get('peak_workers'))} background workers"
                    return out
                return ""
            pg_absent = pgl_note if layout == "multi" else "no pair layout"
            pcell = "—" if layout != "multi" else (pgl_note if pg is None else cell(pg, key))
            rpg = fmt(rp.get("ratio_vs_pglogical")) if rp and layout == "multi" else "—"
            rbu = fmt(rp.get("ratio_vs_bucardo")) if rp else "n/a"
            w(f"| {label} | {cell(rp, key)} | {pcell} | {cell(bu, key)} | {rpg} | {rbu} | "
              f"{detail(rp)}; {detail(pg, pg_absent)}; {detail(bu)} |")
        w("")
    if has_files:
        w("**Files.** Seconds of one run (F2: median of the repetitions), bytes on the wire as SSH counted them.")
        w("")
        w("| workload | repctl | rsync | unison | repctl / rsync (time, bytes) | notes |")
        w("|---|---|---|---|---|---|")
    names = {"F1": "F1 initial sync", "F2": "F2 nothing changed", "F3": "F3 ~1% changed",
             "F4": "F4 two-way + one file edited on both", "F5": "F5 1 MiB overwritten in the big file",
             "F5i": "F5i 1 MiB inserted in the big file", "F6": "F6 big file renamed",
             "P1": "P1 two same-size rewrites within 1 s", "P2": "P2 side A emptied (disk unmounted)",
             "F7": "F7 library: initial sync", "F7n": "F7n library: nothing changed",
             "F7c": "F7c library: 1% changed"}
    for wl in names if has_files else ():
        rr = {t: find(rows, kind="files", tool=t, workload=wl) for t in ("repctl", "rsync", "unison")}
        if not any(rr.values()):
            continue

        def fcell(r):
            if r is None:
                return "not run"
            if r.get("seconds") is None:
                return "n/a" + (f" ({r.get('error', '')[:60]})" if r.get("error") else "")
            return f"{cell(r)}, {human_bytes(r.get('ssh_bytes'))}"

        def note(t, r):
            if r is None:
                return ""
            if wl == "F4":
                return (f"{t}: {'converged' if r.get('converged') else 'NOT converged'} after "
                        f"{r.get('sync_runs')} run(s), {r.get('resurrected')} deletion(s) resurrected, "
                        f"conflict copy on both: {fmt(r.get('conflict_copy_both'))}")
            if wl == "P1":
                return f"{t}: {'both' if r.get('both_detected') else 'second NOT'} detected"
            if wl == "P2":
                return f"{t}: {r.get('lost_on_b')} of {r.get('b_files_before')} files deleted on B"
            if r.get("equal") is False:
                return f"{t}: trees differ after the run"
            if wl.startswith("F7"):
                if t == "repctl" and r.get("rss_coord_mb") is not None:
                    return (f"{t}: {r.get('files')} files, peak RSS coordinator {r.get('rss_coord_mb')} MB, "
                            f"agents {r.get('rss_agent_local_mb')} / {r.get('rss_agent_remote_mb')} MB")
                if r.get("rss_main_mb") is not None:
                    return f"{t}: peak RSS client {r.get('rss_main_mb')} MB, server {r.get('rss_remote_mb')} MB"
            return ""
        rp = rr["repctl"] or {}
        notes = "; ".join(x for x in (note(t, rr[t]) for t in rr) if x)
        w(f"| {names[wl]} | {fcell(rr['repctl'])} | {fcell(rr['rsync'])} | {fcell(rr['unison'])} | "
          f"{fmt(rp.get('ratio_vs_rsync'))}, {fmt(rp.get('bytes_vs_rsync'))} | {notes} |")
    if has_files:
        w("")
    fleet_markdown(rows, w)
    w("**Targets** (repctl, ratios within this run).")
    w("")
    w("| target | layout | measured | limit | |")
    w("|---|---|---|---|---|")
    for r in rows:
        for t in r.get("targets", []):
            word = "n/a" if t["met"] is None else ("met" if t["met"] else "**missed**")
            v = t["value"]
            w(f"| {r['workload']}{' n=' + str(r['n']) if r.get('n') else ''}: {t['target']} | "
              f"{r.get('layout', 'files')} | {fmt(v)} | {fmt(t['limit'])} | {word} |")
    print("\n".join(out))


def fleet_markdown(rows, w):
    fl = sorted((r for r in rows if r["kind"] == "fleet"), key=lambda r: r["n"] or 0)
    if not fl:
        return
    mc = next((r.get("max_connections") for r in fl if r.get("max_connections")), "n/a")
    w(f"**Fleet: one hub and N clients, pairs through the hub** (2N syncs; clients spread over "
      f"{next((r.get('client_clusters') for r in fl if r.get('client_clusters')), 'n/a')} clusters, "
      f"max_connections = {mc} on every cluster). Connections and processes at steady state "
      "(peak over the run in brackets); RSS: coordinator and all its children; idle CPU: "
      "coordinator and children over an idle window, % of one core; propagation: one-row change on "
      "one client until every other client has it; catch-up: a client unreachable while the others "
      "write, seconds from its return until it holds every row.")
    w("")
    w("| N | hub cluster conns (≤ N+10) | metadata db conns | client cluster conns | processes | RSS MB (≤ 150) "
      "| added per client | idle CPU % (≤ 1) | propagation p50 / p95 / max s (p95 ≤ 2) | catch-up s (≤ 30) | notes |")
    w("|---|---|---|---|---|---|---|---|---|---|---|")
    prev = None
    for r in fl:
        if not r.get("measured"):
            w(f"| {r['n']} | not measured | | | | | | | | | {(r.get('error') or '')[:300]} |")
            continue
        cc = r.get("client_cluster_conns") or {}
        pk = r.get("peak_cluster_conns") or {}
        ccs = " / ".join(f"{v} ({pk.get(k, 'n/a')})" for k, v in sorted(cc.items()))
        # the cost of one more client: the slope from the previous size (steady
        # state), or the average for the first size
        keys = ("rss_mb", "hub_cluster_conns", "meta_db_conns")
        base = prev if prev is not None else dict(n=0, rss_mb=0.0, hub_cluster_conns=0, meta_db_conns=0,
                                                   client_cluster_conns={})
        if all(r.get(k) is not None and base.get(k) is not None for k in keys) and r["n"] > base["n"]:
            dn = r["n"] - base["n"]
            cl = (sum(cc.values()) - sum((base.get("client_cluster_conns") or {}).values())) / dn
            per = (f"{fmt((r['rss_mb'] - base['rss_mb']) / dn)} MB RSS, "
                   f"{fmt((r['hub_cluster_conns'] - base['hub_cluster_conns']) / dn)} hub + "
                   f"{fmt((r['meta_db_conns'] - base['meta_db_conns']) / dn)} metadata + "
                   f"{fmt(cl)} client conns" + (f" (from N={base['n']})" if prev is not None else " (average)"))
        else:
            per = "n/a"
        prev = r
        cu = fmt(r.get("catchup_s"))
        if r.get("catchup_s") is None and "catchup_rows" in r:
            cu = (f"not caught up ({r.get('catchup_have_rows')} of {r.get('catchup_rows')} rows after "
                  f"the wait)")
        notes = []
        if r.get("prop_timeouts"):
            notes.append(f"{r['prop_timeouts']} of {r.get('prop_trials')} changes did not reach every client")
        if r.get("log_too_many_clients"):
            notes.append(f"{r['log_too_many_clients']} 'too many clients' errors in repctl.log")
        if r.get("settle_s") is None:
            notes.append(f"only {r.get('syncs_good')} of {2 * r['n']} syncs had a good run at start")
        if r.get("error") and not notes:
            notes.append(r["error"][:200])
        w(f"| {r['n']} | {fmt(r.get('hub_cluster_conns'))} ({fmt(r.get('peak_hub_cluster_conns'))}) | "
          f"{fmt(r.get('meta_db_conns'))} ({fmt(r.get('peak_meta_db_conns'))}) | {ccs} | "
          f"{fmt(r.get('procs'))} ({fmt(r.get('peak_procs'))}) | {fmt(r.get('rss_mb'))} "
          f"({fmt(r.get('peak_rss_mb'))}) | {per} | {fmt(r.get('idle_cpu_pct'))} | "
          f"{fmt(r.get('prop_p50_s'))} / {fmt(r.get('prop_p95_s'))} / {fmt(r.get('prop_max_s'))} | "
          f"{cu} | {'; '.join(notes)} |")
    w("")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("add")
    p.add_argument("file")
    p.add_argument("kv", nargs="*")
    p = sub.add_parser("summary")
    p.add_argument("file")
    p.add_argument("--json")
    p = sub.add_parser("markdown")
    p.add_argument("file")
    a = ap.parse_args()
    {"add": cmd_add, "summary": cmd_summary, "markdown": cmd_markdown}[a.cmd](a)


if __name__ == "__main__":
    main()
