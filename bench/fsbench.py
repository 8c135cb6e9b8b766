#!/usr/bin/python3
"""bench/fsbench.py - the file workloads of the benchmark: repctl's folder
sync against rsync and unison, each over the same private sshd on loopback.

Every tool gets its own pair of trees, A (local, a copy of the seeded
dataset) and B (reached over SSH, empty at first), and the same
deterministic changes in the same order, workload after workload:

  F1  initial sync                 F2  nothing changed
  F3  ~1% changed: appends, rewrites, 20 added, 20 deleted (quick: fewer)
  F4  two-way: changes on both sides plus one file edited on both: runs
      until the trees are equal (at most 4), deletions resurrected?,
      conflict copy on both nodes?
  F5  1 MiB overwritten in the middle of the big file
  F5i 1 MiB inserted in the middle of the big file
  F6  the big file renamed
  P1  two same-size rewrites of one file whose mtimes are within one second
      (in place; the second must be detected)
  P2  side A emptied, .repctl included, as if its disk were unmounted: what
      does one run do to B?
  F7  library scale (a separate pair of trees per tool): a music-library-like
      tree of many small files (full: 100,000; quick: 5,000), artist/album
      directories with tracks of a few KB, covers, cue sheets and rip logs:
      F7 initial sync, F7n no-change run (median of the repetitions), F7c 1%
      of the files changed (rewrites, appends, adds, deletes); with each,
      the peak RSS (VmHWM, sampled every 50 ms) of the processes on both
      sides: repctl's coordinator and its two agents, rsync's client and
      server.  `--workloads F7` runs it alone.

Bytes on the wire are SSH's own count of the connection, "Transferred:
sent N, received M bytes" (the packet layer's counters: every encrypted
packet in both directions, key exchange and authentication included),
summed over the run's connections.  OpenSSH's client logs that line when
its session ends (ssh -E FILE -o LogLevel=VERBOSE), which is how rsync's and
unison's connections are counted; repctl connects with libssh, so its
connections are counted by the sshd, which logs the same line at LogLevel
VERBOSE when a connection ends without a client DISCONNECT message (the sshd
does not log it for OpenSSH's client, which sends one).  Both ends count the
same packets.  Each tool's own figure is kept beside it (rsync --stats,
repctl's folder_run.wire_bytes).  The trees are compared by
content (sha256 of every regular file; the .repctl directory at the top is
left out).

How each tool is run (what a user scripting it would write):
  rsync    rsync -a --delete --stats A/ host:B/   (one-way mirror; in F4 the
           usual two-way recipe: rsync -au A/ host:B/ then rsync -au host:B/ A/)
  unison   unison A ssh://host//B -batch -times -prefer newer -copyonconflict
  repctl   repctl sync folder bench                (two-way)
"""
import argparse
import hashlib
import json
import os
import random
import re
import shlex
import shutil
import subprocess
import sys
import time

try:
    import psycopg2  # only to read repctl's own byte count (informational)
except ImportError:
    psycopg2 = None

MiB = 1 << 20
SCALES = {
    "quick": dict(media=5, media_min=2 * MiB, media_max=2 * MiB + 1, texts=20, big=20 * MiB,
                  f3=dict(app_text=1, app_media=1, rew_text=2, rew_media=0, add_text=3, add_media=0,
                          del_text=2, del_media=1),
                  f4=3, reps_f2=1, timeout=120, f7_files=5000, f7_reps=1),
    "full": dict(media=150, media_min=1 * MiB, media_max=int(6.5 * MiB), texts=2000, big=200 * MiB,
                 f3=dict(app_text=6, app_media=2, rew_text=7, rew_media=1, add_text=18, add_media=2,
                         del_text=16, del_media=4),
                 f4=3, reps_f2=3, timeout=900, f7_files=100000, f7_reps=3),
}

WORDS = ("the a of and to in is was he for it with as his on be at by had are but from or "
         "have an they which one you were all she there would their we him been has when who "
         "will no more if out so up said what its about than into them can only other time "
         "new some could these two may first then do any like my now over such our man me "
         "even most made after also did many off before must well back through years where "
         "much your way down should because long each just those people mr how too little "
         "state good very make world still see own men work last never us old between both "
         "jazz album track guitar bass drums piano vinyl remaster live session mono stereo").split()


def log(msg):
    print("# " + msg, file=sys.stderr, flush=True)


def text_bytes(rnd, n):
    out = []
    size = 0
    while size < n:
        line = " ".join(rnd.choice(WORDS) for _ in range(rnd.randrange(4, 14))) + "\n"
        out.append(line)
        size += len(line)
    return "".join(out).encode()[:n]


def write(path, data, mode="wb"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, mode) as f:
        f.write(data)


# ------------------------------------------------------------------ dataset --

def make_seed(root, sc):
    """The seeded dataset: text notes in nested folders, incompressible media
    files, one big file, the same bytes in every run (so that chunk
    boundaries, and the bytes a change costs, repeat).  Returns the manifest
    (relative paths by kind)."""
    rnd = random.Random(20240611)
    man = {"text": [], "media": [], "big": "big/archive.bin"}
    for i in range(sc["texts"]):
        rel = f"notes/n{i % 20:02d}/s{(i // 20) % 10}/note-{i:04d}.txt"
        write(os.path.join(root, rel), text_bytes(rnd, rnd.randrange(200, 20000)))
        man["text"].append(rel)
    for i in range(sc["media"]):
        rel = f"music/artist-{i % 15:02d}/album-{i % 7}/track-{i:03d}.flac"
        n = rnd.randrange(sc["media_min"], sc["media_max"])
        write(os.path.join(root, rel), rnd.randbytes(n))
        man["media"].append(rel)
    big = os.path.join(root, man["big"])
    os.makedirs(os.path.dirname(big), exist_ok=True)
    with open(big, "wb") as f:
        left = sc["big"]
        while left:
            k = min(left, 8 * MiB)
            f.write(rnd.randbytes(k))
            left -= k
    # a fixed mtime in the past for everything, so that "newer" is unambiguous
    past = time.time() - 86400
    for dp, dn, fn in os.walk(root):
        for x in fn:
            os.utime(os.path.join(dp, x), (past, past))
    return man


def plan_changes(man, sc):
    """Which files each workload touches: disjoint sets, the same for every tool."""
    rnd = random.Random(7)
    texts = list(man["text"])
    media = list(man["media"])
    rnd.shuffle(texts)
    rnd.shuffle(media)
    f3 = sc["f3"]

    def take(lst, k):
        out = lst[:k]
        del lst[:k]
        return out

    p = {"F3": dict(app_text=take(texts, f3["app_text"]), app_media=take(media, f3["app_media"]),
                    rew_text=take(texts, f3["rew_text"]), rew_media=take(media, f3["rew_media"]),
                    add_text=[f"notes/new/f3-{i:02d}.txt" for i in range(f3["add_text"])],
                    add_media=[f"music/new/f3-{i:02d}.flac" for i in range(f3["add_media"])],
                    del_text=take(texts, f3["del_text"]), del_media=take(media, f3["del_media"]))}
    k = sc["f4"]
    p["F4"] = dict(edit_a=take(texts, k), add_a=[f"notes/f4/a-{i}.txt" for i in range(k)],
                   del_a=take(texts, k), edit_b=take(texts, k),
                   add_b=[f"notes/f4/b-{i}.txt" for i in range(k)], del_b=take(texts, k),
                   both=take(texts, 1)[0])
    p["P1"] = take(texts, 1)[0]
    return p


# ------------------------------------------------------------- comparisons --

_hcache = {}


def file_hash(path):
    st = os.stat(path)
    key = (path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    h = _hcache.get(key)
    if h is None:
        d = hashlib.sha256()
        with open(path, "rb") as f:
            while True:
                b = f.read(4 * MiB)
                if not b:
                    break
                d.update(b)
        h = d.hexdigest()
        _hcache[key] = h
    return h


def tree(root):
    out = {}
    for dp, dn, fn in os.walk(root):
        if dp == root and ".repctl" in dn:
            dn.remove(".repctl")
        for x in fn:
            full = os.path.join(dp, x)
            if os.path.isfile(full) and not os.path.islink(full):
                out[os.path.relpath(full, root)] = file_hash(full)
    return out


def count_files(root):
    n = 0
    for dp, dn, fn in os.walk(root):
        if dp == root and ".repctl" in dn:
            dn.remove(".repctl")
        n += len(fn)
    return n


def tree_diff(a, b):
    ta, tb = tree(a), tree(b)
    only_a = sorted(set(ta) - set(tb))
    only_b = sorted(set(tb) - set(ta))
    differ = sorted(k for k in set(ta) & set(tb) if ta[k] != tb[k])
    return only_a, only_b, differ


# ------------------------------------------------------------ F7: library --

def make_library(root, nfiles):
    """A music-library-like tree of about nfiles small files: artist/album
    directories, per album 16 tracks of 2-10 KB (incompressible), a cover
    (8-30 KB), a small folder.jpg, a cue sheet and a rip log (text).  The
    same bytes in every run.  Returns the manifest (relative paths by kind)."""
    rnd = random.Random(20261203)
    man = {"track": [], "cue": [], "other": []}
    per_album = 20
    albums = max(1, (nfiles + per_album - 1) // per_album)
    made = 0
    for al in range(albums):
        d = f"Artist {al // 4:04d}/Album {al % 4} ({1960 + al % 60})"
        os.makedirs(os.path.join(root, d), exist_ok=True)
        files = []
        for t in range(1, 17):
            files.append((f"{d}/{t:02d} - Track {t:02d}.flac", "track", rnd.randrange(2048, 10240)))
        files.append((f"{d}/cover.jpg", "other", rnd.randrange(8192, 30720)))
        files.append((f"{d}/folder.jpg", "other", rnd.randrange(2048, 4096)))
        files.append((f"{d}/album.cue", "cue", rnd.randrange(500, 1500)))
        files.append((f"{d}/rip.log", "other", rnd.randrange(1000, 3000)))
        for rel, kind, n in files:
            if made >= nfiles:
                break
            data = text_bytes(rnd, n) if rel.endswith((".cue", ".log")) else rnd.randbytes(n)
            with open(os.path.join(root, rel), "wb") as f:
                f.write(data)
            man[kind].append(rel)
            made += 1
    past = time.time() - 86400
    for dp, dn, fn in os.walk(root):
        for x in fn:
            os.utime(os.path.join(dp, x), (past, past))
    return man


def plan_library(man, nfiles):
    """F7c: 1% of the files: 40% of them tracks rewritten, 20% cue sheets
    appended to, 20% tracks added (a bonus track in an album), 20% tracks
    deleted; disjoint, the same for every tool."""
    rnd = random.Random(77)
    k = max(5, nfiles // 100)
    tracks = list(man["track"])
    rnd.shuffle(tracks)
    cues = list(man["cue"])
    rnd.shuffle(cues)
    n_rew, n_app, n_add = k * 2 // 5, k // 5, k // 5
    n_del = k - n_rew - n_app - n_add
    rew = tracks[:n_rew]
    dele = tracks[n_rew:n_rew + n_del]
    app = cues[:n_app]
    albums = sorted({os.path.dirname(x) for x in tracks[n_rew + n_del:n_rew + n_del + 4 * n_add]})
    add = [f"{d}/17 - Bonus Track.flac" for d in albums[:n_add]]
    return dict(rew=rew, app=app, add=add, dele=dele, count=len(rew) + len(app) + len(add) + len(dele))


class RssSampler:
    """Peak RSS (VmHWM) of the processes a run starts: the tool's own process
    (main), its descendants (local:COMM) and the descendants of the bench's
    sshd (remote:COMM: what the tool ran on the other side), sampled every
    50 ms.  VmHWM only grows, so the last sample of a process is its peak
    up to at most 50 ms before it exited."""
    SKIP = {"sshd", "sh", "bash", "dash", "ssh", "sshd-session"}

    def __init__(self, main_pid, sshd_pid):
        import threading
        self.main, self.sshd = main_pid, sshd_pid
        self.peak = {}
        self.stop = threading.Event()
        self.th = threading.Thread(target=self.loop, daemon=True)
        self.th.start()

    @staticmethod
    def procs():
        out = {}
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/stat") as f:
                    st = f.read()
            except OSError:
                continue
            head, _, rest = st.rpartition(")")
            comm = head.partition("(")[2]
            out[int(d)] = (int(rest.split()[1]), comm)
        return out

    def loop(self):
        while True:
            done = self.stop.is_set()
            ps = self.procs()
            kids = {}
            for pid, (ppid, comm) in ps.items():
                kids.setdefault(ppid, []).append(pid)
            for root, side in ((self.main, "local"), (self.sshd, "remote")):
                if not root:
                    continue
                todo = [root]
                while todo:
                    pid = todo.pop()
                    todo.extend(kids.get(pid, []))
                    if pid == self.sshd:
                        continue
                    comm = ps.get(pid, (0, "?"))[1]
                    if pid != self.main and comm in self.SKIP:
                        continue
                    key = "main" if pid == self.main else f"{side}:{comm}"
                    try:
                        with open(f"/proc/{pid}/status") as f:
                            for ln in f:
                                if ln.startswith("VmHWM:"):
                                    kb = int(ln.split()[1])
                                    if kb > self.peak.get(key, 0):
                                        self.peak[key] = kb
                                    break
                    except OSError:
                        pass
            if done:
                return
            time.sleep(0.05)

    def finish(self):
        self.stop.set()
        self.th.join()
        return {k: round(v / 1024, 1) for k, v in self.peak.items()}


# -------------------------------------------------------------------- wire --

class SshCounter:
    """Sum of the 'Transferred: sent N, received M bytes' lines that an ssh
    log file (the sshd's, or an OpenSSH client's -E file) gained."""
    RE = re.compile(r"Transferred: sent ([0-9,]+), received ([0-9,]+) bytes")

    def __init__(self, logfile):
        self.logfile = logfile

    def lines(self):
        try:
            with open(self.logfile, errors="replace") as f:
                return [m for m in map(self.RE.search, f) if m]
        except OSError:
            return []

    def mark(self):
        self.start = len(self.lines())

    def collect(self, expect, timeout=5.0):
        deadline = time.monotonic() + (timeout if expect else 0.5)
        while True:
            got = self.lines()[self.start:]
            if len(got) >= max(expect, 1) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        time.sleep(0.1)
        got = self.lines()[self.start:]
        return sum(int(m.group(1).replace(",", "")) + int(m.group(2).replace(",", ""))
                   for m in got), len(got)


# ------------------------------------------------------------------- tools --

class Tool:
    name = "?"

    def __init__(self, g, a, b):
        self.g, self.a, self.b = g, a, b
        # OpenSSH's client log (rsync, unison); repctl is counted by the sshd
        self.client_log = os.path.join(g.root, self.name, "ssh-client.log")
        self.counter = SshCounter(g.sshd_log if self.name == "repctl" else self.client_log)

    def ssh_cmd(self):
        g = self.g
        return ["ssh", "-F", "/dev/null", "-p", str(g.port), "-i", g.key, "-o", "IdentitiesOnly=yes",
                "-o", f"UserKnownHostsFile={g.known_hosts}", "-o", "StrictHostKeyChecking=yes",
                "-o", "BatchMode=yes", "-o", "Compression=no", "-o", "LogLevel=VERBOSE",
                "-E", self.client_log]

    def setup(self):
        pass

    def exec(self, cmd, env=None):
        """Run cmd; with self.rss set (F7), its peak RSS by process goes into self.rss_seen."""
        t0 = time.monotonic()
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        sampler = RssSampler(p.pid, self.g.sshd_pid) if getattr(self, "rss", False) else None
        try:
            out, err = p.communicate(timeout=self.g.timeout)
            rc = p.returncode
        except subprocess.TimeoutExpired:
            p.kill()
            out, _ = p.communicate()
            rc, err = 124, f"timed out after {self.g.timeout} s"
        secs = time.monotonic() - t0
        if sampler:
            peaks = sampler.finish()
            for k, v in peaks.items():
                self.rss_seen[k] = max(v, self.rss_seen.get(k, 0))
        return rc, secs, out or "", err or ""


class Rsync(Tool):
    name = "rsync"

    def remote(self):
        return f"{self.g.user}@127.0.0.1:{self.b}/"

    def run(self, twoway=False):
        e = " ".join(shlex.quote(x) for x in self.ssh_cmd())
        if twoway:
            cmds = [["rsync", "-au", "--stats", "-e", e, self.a + "/", self.remote()],
                    ["rsync", "-au", "--stats", "-e", e, self.remote(), self.a + "/"]]
        else:
            cmds = [["rsync", "-a", "--delete", "--stats", "-e", e, self.a + "/", self.remote()]]
        secs, own, rcs, msg = 0.0, 0, [], ""
        for c in cmds:
            rc, s, out, err = self.exec(c)
            secs += s
            rcs.append(rc)
            for k in ("sent", "received"):
                m = re.search(rf"Total bytes {k}: ([0-9,]+)", out)
                if m:
                    own += int(m.group(1).replace(",", ""))
            if rc:
                msg = (err.strip().splitlines() or [""])[-1]
        return dict(rc=max(rcs), seconds=secs, tool_bytes=own, conns=len(cmds), msg=msg)


class Unison(Tool):
    name = "unison"

    def setup(self):
        self.local = os.path.join(self.g.root, "unison", "local")
        self.remote_dir = os.path.join(self.g.root, "unison", "remote")
        os.makedirs(self.local, exist_ok=True)
        os.makedirs(self.remote_dir, exist_ok=True)

    def run(self, twoway=False):
        ssh = self.ssh_cmd()
        cmd = ["unison", self.a, f"ssh://{self.g.user}@127.0.0.1/{self.b}",
               "-batch", "-times", "-prefer", "newer", "-copyonconflict", "-ui", "text",
               "-contactquietly", "-sshcmd", "ssh", "-sshargs", " ".join(shlex.quote(x) for x in ssh[1:]),
               "-servercmd", f"env UNISON={self.remote_dir} {shutil.which('unison')}"]
        env = dict(os.environ, UNISON=self.local)
        rc, s, out, err = self.exec(cmd, env)
        msg = ""
        if rc:
            lines = [x for x in (err + "\n" + out).splitlines() if x.strip()]
            msg = " | ".join(lines[-3:])
        # unison: 0 all done, 1 some files skipped, 2 non-fatal failures, 3 fatal
        return dict(rc=rc, seconds=s, tool_bytes=None, conns=1, msg=msg)


class Repctl(Tool):
    name = "repctl"
    folder = "bench"

    def setup(self):
        rc, s, out, err = self.exec([self.g.repctl, "add", "folder", self.folder,
                                     f"nodes=cava:{self.a},juke:{self.b}"])
        if rc:
            raise RuntimeError("repctl add folder: " + (err or out).strip()[-300:])

    def run(self, twoway=False):
        rc, s, out, err = self.exec([self.g.repctl, "sync", "folder", self.folder])
        own = None
        try:
            if psycopg2 is None:
                raise RuntimeError("python3-psycopg2 is not installed")
            c = psycopg2.connect(os.environ["REPCTL_META"])
            with c.cursor() as cur:
                cur.execute("SELECT wire_bytes FROM repctl.folder_run WHERE folder = %s "
                            "ORDER BY id DESC LIMIT 1", (self.folder,))
                r = cur.fetchone()
                own = r[0] if r else None
            c.close()
        except Exception as e:  # the figure is informational
            log(f"repctl: folder_run not read: {e}")
        summary = ([x for x in out.splitlines() if x.startswith("folder ")] or [""])[-1]
        msg = "" if rc == 0 else (err.strip().splitlines() or [""])[-1]
        return dict(rc=rc, seconds=s, tool_bytes=own, conns=1, msg=msg, summary=summary)


# ---------------------------------------------------------------- workloads --

class Bench:
    def __init__(self, g):
        self.g = g
        self.sc = SCALES[g.scale]
        self.tools = {}

    def record(self, tool, workload, **kv):
        rec = dict(kind="files", tool=tool, workload=workload,
                   time=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                   load1=round(os.getloadavg()[0], 2))
        rec.update(kv)
        with open(self.g.out, "a") as f:
            f.write(json.dumps(rec, sort_keys=True) + "\n")
        brief = " ".join(f"{k}={v}" for k, v in kv.items()
                         if not isinstance(v, (list, dict)) and k not in ("summary",))
        log(f"{tool} {workload} {brief}")

    def sync(self, t, twoway=False):
        t.counter.mark()
        r = t.run(twoway)
        r["ssh_bytes"], r["ssh_conns"] = t.counter.collect(r["conns"] if r["rc"] == 0 else 0)
        return r

    def measure(self, t, workload, twoway=False, check=True, record=True, **extra):
        r = self.sync(t, twoway)
        kv = dict(seconds=r["seconds"], ssh_bytes=r["ssh_bytes"], tool_bytes=r["tool_bytes"],
                  rc=r["rc"], ok=r["rc"] == 0)
        if r.get("summary"):
            kv["summary"] = r["summary"]
        if check:
            oa, ob, dif = tree_diff(t.a, t.b)
            kv["equal"] = not (oa or ob or dif)
            if not kv["equal"]:
                kv["diff"] = dict(only_a=oa[:5], only_b=ob[:5], differ=dif[:5],
                                  counts=[len(oa), len(ob), len(dif)])
                kv["ok"] = False
        if r["rc"]:
            kv["error"] = r["msg"][:400]
        kv.update(extra)
        if record:
            self.record(t.name, workload, **kv)
        return kv

    def each(self, fn):
        for name, t in self.tools.items():
            if t is None:
                continue
            try:
                fn(t)
            except Exception as e:
                self.record(name, getattr(fn, "__name__", "?"), ok=False, seconds=None,
                            error=f"{type(e).__name__}: {e}"[:400])

    def resync(self, t):
        """Bring the trees together before a workload (not measured)."""
        for _ in range(2):
            oa, ob, dif = tree_diff(t.a, t.b)
            if not (oa or ob or dif):
                return
            self.sync(t, twoway=t.name == "rsync")

    def run(self):
        if any(w != "F7" for w in self.g.workloads):
            self.run_main()
        if "F7" in self.g.workloads:
            self.run_f7()

    def run_f7(self):
        """F7, library scale: its own trees and, for repctl, its own folder."""
        g, sc = self.g, self.sc
        nfiles = g.f7_files or sc["f7_files"]
        root = os.path.join(g.root, "f7")
        seed = os.path.join(root, "seed")
        t0 = time.monotonic()
        man = make_library(seed, nfiles)
        total = sum(os.path.getsize(os.path.join(dp, x)) for dp, dn, fn in os.walk(seed) for x in fn)
        nfiles = count_files(seed)
        self.record("dataset", "F7seed", files=nfiles, bytes=total, seconds=time.monotonic() - t0,
                    dirs=sum(len(dn) for _, dn, _ in os.walk(seed)))
        plan = plan_library(man, nfiles)
        tools = {}
        for cls in (Rsync, Unison, Repctl):
            if cls.name not in g.tools:
                continue
            exe = g.repctl if cls.name == "repctl" else shutil.which(cls.name)
            if not exe or not os.path.exists(exe):
                self.record(cls.name, "F7", ok=False, seconds=None, error=f"{cls.name} is not installed")
                continue
            a = os.path.join(root, cls.name, "A")
            b = os.path.join(root, cls.name, "B")
            os.makedirs(b, exist_ok=True)
            subprocess.run(["cp", "-a", "--reflink=auto", seed, a], check=True)
            t = cls(g, a, b)
            t.client_log = os.path.join(root, cls.name, "ssh-client.log")
            if cls.name != "repctl":
                t.counter = SshCounter(t.client_log)
            if cls.name == "unison":
                t.local = os.path.join(root, "unison", "local")
                t.remote_dir = os.path.join(root, "unison", "remote")
                os.makedirs(t.local, exist_ok=True)
                os.makedirs(t.remote_dir, exist_ok=True)
            else:
                t.folder = "library"
                try:
                    t.setup()
                except Exception as e:
                    self.record(cls.name, "F7", ok=False, seconds=None, error=str(e)[:400])
                    continue
            tools[cls.name] = t
        shutil.rmtree(seed)

        def rss_fields(t):
            seen = t.rss_seen
            out = {"rss_main_mb": seen.get("main")}
            if t.name.startswith("repctl"):
                out["rss_coord_mb"] = seen.get("main")
                # the local agent is the coordinator's child: its comm is "exe" when it is
                # exec'ed through /proc/self/exe, else its binary's name (ssh is skipped)
                out["rss_agent_local_mb"] = max([v for k, v in seen.items()
                                                 if k.startswith("local:")] or [None], key=lambda x: x or 0)
                out["rss_agent_remote_mb"] = max([v for k, v in seen.items()
                                                  if k.startswith("remote:repctl")] or [None], key=lambda x: x or 0)
            else:
                out["rss_remote_mb"] = max([v for k, v in seen.items() if k.startswith("remote:")] or [0]) or None
            out["rss_all"] = dict(seen)
            return out

        def one(t, wl, **extra):
            t.rss, t.rss_seen = True, {}
            try:
                kv = self.measure(t, wl, record=False, **extra)
            finally:
                t.rss = False
            kv.update(rss_fields(t))
            self.record(t.name, wl, **kv)

        for name, t in tools.items():
            log(f"--- F7 {name}")
            try:
                one(t, "F7", files=nfiles, bytes=total)
                for rep in range(1, sc["f7_reps"] + 1):
                    one(t, "F7n", rep=rep, files=nfiles)
                rnd = random.Random(17)
                for rel in plan["rew"]:
                    write(os.path.join(t.a, rel), rnd.randbytes(rnd.randrange(2048, 10240)))
                for rel in plan["app"]:
                    write(os.path.join(t.a, rel), text_bytes(rnd, 200), "ab")
                for rel in plan["add"]:
                    write(os.path.join(t.a, rel), rnd.randbytes(rnd.randrange(2048, 10240)))
                for rel in plan["dele"]:
                    os.unlink(os.path.join(t.a, rel))
                one(t, "F7c", changed_files=plan["count"], files=nfiles)
                if name == "repctl" and g.compare_repctl:
                    # the same trees, now synced, under another build (before/after figures)
                    o = Repctl(g, t.a, t.b)
                    o.name, o.folder, o.counter = "repctl-other", t.folder, t.counter
                    o.g = argparse.Namespace(**dict(vars(g), repctl=g.compare_repctl))
                    # its agents too: the remote node runs the binary its node record names
                    subprocess.run([g.compare_repctl, "update", "database", "juke",
                                    f"agent={g.compare_repctl}"], check=True, capture_output=True)
                    for rep in range(1, sc["f7_reps"] + 1):
                        one(o, "F7n", rep=rep, files=nfiles, binary=g.compare_repctl)
                    rnd = random.Random(18)
                    for rel in plan["rew"][:len(plan["rew"]) // 2]:
                        write(os.path.join(t.a, rel), rnd.randbytes(rnd.randrange(2048, 10240)))
                    for rel in plan["app"]:
                        write(os.path.join(t.a, rel), text_bytes(rnd, 200), "ab")
                    for rel in plan["add"]:
                        os.unlink(os.path.join(t.a, rel))
                    one(o, "F7c", changed_files=len(plan["rew"]) // 2 + len(plan["app"]) + len(plan["add"]),
                        files=nfiles, binary=g.compare_repctl)
                    subprocess.run([g.repctl, "update", "database", "juke", f"agent={g.repctl}"],
                                   check=True, capture_output=True)
            except Exception as e:
                self.record(name, "F7", ok=False, seconds=None, error=f"{type(e).__name__}: {e}"[:400])
            if not g.keep_f7:
                shutil.rmtree(os.path.join(root, name), ignore_errors=True)

    def run_main(self):
        g, sc = self.g, self.sc
        seed = os.path.join(g.root, "seed")
        t0 = time.monotonic()
        man = make_seed(seed, sc)
        total = sum(os.path.getsize(os.path.join(dp, x)) for dp, dn, fn in os.walk(seed) for x in fn)
        nfiles = count_files(seed)
        self.record("dataset", "seed", files=nfiles, bytes=total, seconds=time.monotonic() - t0,
                    texts=len(man["text"]), media=len(man["media"]), big_bytes=sc["big"])
        plan = plan_changes(man, sc)
        for cls in (Rsync, Unison, Repctl):
            if cls.name not in g.tools:
                continue
            exe = g.repctl if cls.name == "repctl" else shutil.which(cls.name)
            if not exe or not os.path.exists(exe):
                self.record(cls.name, "setup", ok=False, seconds=None,
                            error=f"{cls.name} is not installed (bench/deps.sh installs it)")
                continue
            a = os.path.join(g.root, cls.name, "A")
            b = os.path.join(g.root, cls.name, "B")
            os.makedirs(b, exist_ok=True)
            subprocess.run(["cp", "-a", "--reflink=auto", seed, a], check=True)
            t = cls(g, a, b)
            try:
                t.setup()
                self.tools[cls.name] = t
            except Exception as e:
                self.record(cls.name, "setup", ok=False, seconds=None, error=str(e)[:400])
        shutil.rmtree(seed)

        def F1(t):
            self.measure(t, "F1", files=nfiles, bytes=total)

        def F2(t):
            for rep in range(1, sc["reps_f2"] + 1):
                self.measure(t, "F2", rep=rep)

        def F3(t):
            p = plan["F3"]
            rnd = random.Random(3)
            for rel in p["app_text"]:
                write(os.path.join(t.a, rel), text_bytes(rnd, rnd.randrange(1000, 4000)), "ab")
            for rel in p["app_media"]:
                write(os.path.join(t.a, rel), rnd.randbytes(256 * 1024), "ab")
            for rel in p["rew_text"]:
                write(os.path.join(t.a, rel), text_bytes(rnd, rnd.randrange(200, 20000)))
            for rel in p["rew_media"]:
                write(os.path.join(t.a, rel), rnd.randbytes(os.path.getsize(os.path.join(t.a, rel))))
            for rel in p["add_text"]:
                write(os.path.join(t.a, rel), text_bytes(rnd, rnd.randrange(200, 20000)))
            for rel in p["add_media"]:
                write(os.path.join(t.a, rel), rnd.randbytes(2 * MiB))
            for rel in p["del_text"] + p["del_media"]:
                os.unlink(os.path.join(t.a, rel))
            changed = sum(len(v) for v in p.values())
            self.measure(t, "F3", changed_files=changed)

        def F4(t):
            p = plan["F4"]
            rnd = random.Random(4)
            now = time.time()
            for side, edit, add, dele in ((t.a, p["edit_a"], p["add_a"], p["del_a"]),
                                          (t.b, p["edit_b"], p["add_b"], p["del_b"])):
                for rel in edit:
                    write(os.path.join(side, rel), text_bytes(rnd, rnd.randrange(200, 20000)))
                for rel in add:
                    write(os.path.join(side, rel), text_bytes(rnd, rnd.randrange(200, 20000)))
                for rel in dele:
                    os.unlink(os.path.join(side, rel))
            both = p["both"]
            old = text_bytes(rnd, 3000) + b"edited on A (older)\n"
            new = text_bytes(rnd, 3000) + b"edited on B (newer)\n"
            write(os.path.join(t.a, both), old)
            os.utime(os.path.join(t.a, both), (now - 10, now - 10))
            write(os.path.join(t.b, both), new)
            os.utime(os.path.join(t.b, both), (now, now))
            secs, wire, own, runs, conv, rcs = 0.0, 0, 0, 0, False, []
            for runs in range(1, 5):
                r = self.sync(t, twoway=True)
                secs += r["seconds"]
                wire += r["ssh_bytes"]
                own += r["tool_bytes"] or 0
                rcs.append(r["rc"])
                oa, ob, dif = tree_diff(t.a, t.b)
                if not (oa or ob or dif):
                    conv = True
                    break
            deleted = p["del_a"] + p["del_b"]
            resurrected = sum(1 for rel in deleted
                              if os.path.exists(os.path.join(t.a, rel)) or os.path.exists(os.path.join(t.b, rel)))
            d, base = os.path.split(both)
            stem = os.path.splitext(base)[0]

            def copies(side):
                try:
                    names = os.listdir(os.path.join(side, d))
                except OSError:
                    return []
                return [x for x in names if x != base and stem in x and "conflict" in x.lower()]

            def holds(side, data):
                for x in [base] + copies(side):
                    try:
                        with open(os.path.join(side, d, x), "rb") as f:
                            if f.read() == data:
                                return True
                    except OSError:
                        pass
                return False

            def at_name(side):
                try:
                    with open(os.path.join(side, both), "rb") as f:
                        return f.read()
                except OSError:
                    return None

            ca, cb = copies(t.a), copies(t.b)
            self.record(t.name, "F4", seconds=secs, ssh_bytes=wire, tool_bytes=own or None, runs=runs,
                        converged=conv, resurrected=resurrected, deleted=len(deleted),
                        conflict_copy_a=len(ca), conflict_copy_b=len(cb),
                        conflict_copy_both=bool(ca and cb),
                        newer_at_name=at_name(t.a) == new and at_name(t.b) == new,
                        both_versions_kept=all(holds(s, old) and holds(s, new) for s in (t.a, t.b)),
                        rc=max(rcs), ok=conv and resurrected == 0 and bool(ca and cb))

        def F5(t):
            self.resync(t)
            path = os.path.join(t.a, man["big"])
            n = os.path.getsize(path)
            with open(path, "r+b") as f:
                f.seek(n // 2)
                f.write(random.Random(5).randbytes(MiB))
            self.measure(t, "F5", changed_bytes=MiB)

        def F5i(t):
            path = os.path.join(t.a, man["big"])
            with open(path, "rb") as f:
                data = f.read()
            mid = len(data) // 2
            write(path, data[:mid] + random.Random(6).randbytes(MiB) + data[mid:])
            self.measure(t, "F5i", inserted_bytes=MiB)

        def F6(t):
            src = os.path.join(t.a, man["big"])
            os.rename(src, os.path.join(os.path.dirname(src), "archive-renamed.bin"))
            self.measure(t, "F6")

        def P1(t):
            self.resync(t)
            rel = plan["P1"]
            pa, pb = os.path.join(t.a, rel), os.path.join(t.b, rel)
            n = os.path.getsize(pa)
            rnd = random.Random(11)
            v1 = text_bytes(rnd, n)
            v2 = text_bytes(rnd, n)
            base = int(time.time()) - 5
            with open(pa, "r+b") as f:  # in place: same inode, same size
                f.write(v1)
            os.utime(pa, ns=(base * 10**9 + 200_000_000, base * 10**9 + 200_000_000))
            r1 = self.sync(t)
            with open(pb, "rb") as f:
                got1 = f.read() == v1
            with open(pa, "r+b") as f:
                f.write(v2)
            os.utime(pa, ns=(base * 10**9 + 700_000_000, base * 10**9 + 700_000_000))
            r2 = self.sync(t)
            with open(pb, "rb") as f:
                got2 = f.read() == v2
            self.record(t.name, "P1", seconds=r1["seconds"] + r2["seconds"],
                        ssh_bytes=r1["ssh_bytes"] + r2["ssh_bytes"],
                        tool_bytes=(r1["tool_bytes"] or 0) + (r2["tool_bytes"] or 0),
                        first_detected=got1, second_detected=got2, both_detected=got1 and got2,
                        rc=max(r1["rc"], r2["rc"]), ok=got1 and got2)

        def P2(t):
            self.resync(t)
            b_before = count_files(t.b)
            for x in os.listdir(t.a):
                full = os.path.join(t.a, x)
                if os.path.isdir(full) and not os.path.islink(full):
                    shutil.rmtree(full)
                else:
                    os.unlink(full)
            r = self.sync(t)
            b_after = count_files(t.b)
            self.record(t.name, "P2", seconds=r["seconds"], ssh_bytes=r["ssh_bytes"],
                        tool_bytes=r["tool_bytes"], rc=r["rc"], b_files_before=b_before,
                        b_files_after=b_after, lost_on_b=b_before - b_after,
                        a_files_after=count_files(t.a), message=r["msg"][:300],
                        ok=b_after == b_before)

        for fn in (F1, F2, F3, F4, F5, F5i, F6, P1, P2):
            log(f"--- {fn.__name__}")
            self.each(fn)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", choices=SCALES, default="full")
    ap.add_argument("--tools", default="repctl,rsync,unison")
    ap.add_argument("--root", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--known-hosts", dest="known_hosts", required=True)
    ap.add_argument("--sshd-log", dest="sshd_log", required=True)
    ap.add_argument("--repctl", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--sshd-pid", dest="sshd_pid", type=int, default=0,
                    help="the sshd's PID: F7 samples the RSS of what the tools run under it")
    ap.add_argument("--workloads", default="all",
                    help="comma list: the main workloads (F1-P2; 'main') and/or F7; default all")
    ap.add_argument("--f7-files", dest="f7_files", type=int, default=0,
                    help="F7's file count (default: full 100000, quick 5000)")
    ap.add_argument("--compare-repctl", dest="compare_repctl", default="",
                    help="F7: after repctl's runs, F7n and a second F7c (half the rewrites, the appends "
                         "again, the added tracks deleted) with this other repctl binary on the same "
                         "trees, recorded as tool repctl-other")
    ap.add_argument("--keep-f7", dest="keep_f7", action="store_true",
                    help="keep F7's trees (they are removed after each tool by default)")
    g = ap.parse_args()
    w = [x for x in g.workloads.split(",") if x]
    g.workloads = ["main", "F7"] if "all" in w else w
    g.tools = [x for x in g.tools.split(",") if x]
    g.timeout = SCALES[g.scale]["timeout"]
    Bench(g).run()


if __name__ == "__main__":
    main()
