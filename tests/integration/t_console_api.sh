#!/usr/bin/env bash
# tests/integration/t_console_api.sh - issue 16: the web console's JSON API,
# /metrics and /healthz, served by a running coordinator (http.listen on a
# free loopback port), driven with curl. Nodes a, b, c; syncs ab (a -> b),
# ba (b -> a), ac (a -> c); a table with a unique email for quarantines;
# a folder (rows in the metadata, its worker started by a reload).
#
# Proves:
#  - `repctl start` refuses a console off loopback without http.token, a
#    short token, and a certificate without its key, naming the file and
#    the fix; a good configuration starts a console child, listed in the
#    pid .info file, restarted after a SIGKILL while replication goes on;
#  - GET /api/v1/status has the figures of `status --json`; GET
#    /api/v1/conflicts is byte for byte `conflicts --json`, and its sync,
#    table and since filters work (a bad since is a 400);
#  - /healthz answers 200 exactly when `status --health` exits 0 (503 with
#    the word otherwise; ?accept=yellow takes yellow);
#  - /metrics parses with a strict text-format 0.0.4 parser written here
#    (HELP and TYPE before samples, names, escaped labels, numbers, no
#    duplicate series) and with prometheus_client's when installed; its
#    figures equal status's and the run table's;
#  - POST kick makes a new run; pause and resume change the sync's state as
#    the CLI sees it; quarantine resolve with dry_run=1 lists the colliding
#    row and changes nothing, keep=incoming deletes it and the sync
#    converges; folder sync wakes the folder's worker (a new run);
#  - errors: unknown path 404, wrong method 405 with Allow, unknown sync or
#    id 404, bad keep 400, body too large 413, wrong content type 415,
#    foreign Host 403 (DNS rebinding), a browser POST without the page's
#    CSRF token 403; every error is JSON {"error": ...}; strict headers;
#  - no password of a conninfo and no token is ever in an answer;
#  - with http.token and http.readonly_token: GETs need a token (401), the
#    read-only one cannot act (403), the admin one can; a login cookie acts
#    only with its CSRF token;
#  - a fuzz run (random methods, paths, headers, bodies, a client sending
#    its headers byte by byte, an endless body, garbage) leaves the console
#    process alive and answering, and replication running;
#  - with the metadata database down /healthz says unknown (503), and the
#    console reconnects when it is back;
#  - with http.tls_cert/http.tls_key it answers HTTPS (Secure cookie) and
#    no plain HTTP.
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

command -v curl >/dev/null || skip_all "curl is not installed"
PY=/usr/bin/python3
[[ -x $PY ]] || PY=python3

REPL_SCHEMA_SQL+="
CREATE TABLE public.users (id bigint PRIMARY KEY, email text NOT NULL UNIQUE, name text,
    updated_at timestamptz NOT NULL DEFAULT now());"
repl_setup a b c
for e in ab:a:b ba:b:a ac:a:c; do
	IFS=: read -r s src tgt <<<"$e"
	run_repctl add sync "$s" relgroup="$REPL_HERD" dbs="$src:source,$tgt:target" conflict_strategy=latest
	is "$RC" 0 "add sync $s"
done
meta() { pg_psql meta postgres -c "$1"; }

free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
BASE="http://127.0.0.1:$PORT"
SECRET_PW="sEcReT-pw-$RANDOM$RANDOM"
# the metadata conninfo carries a password (the test clusters trust, so it is not needed):
# it must never show up in an answer
export REPCTL_META="$REPCTL_META password=$SECRET_PW"
write_conf() { # write_conf EXTRA-HTTP-SETTINGS
	cat >"$TEST_TMP/repctl.conf" <<EOF
retry = { min = 1; max = 2; };
sync_interval = 5;
http = { listen = "127.0.0.1:$PORT"; $1 };
EOF
	export REPCTL_CONFIG=$TEST_TMP/repctl.conf
}

# ---- refused configurations ------------------------------------------------------------------
refused_start() { # refused_start MSG RE HTTP-SETTINGS
	cat >"$TEST_TMP/bad.conf" <<EOF
http = { $3 };
EOF
	run_repctl -c "$TEST_TMP/bad.conf" start
	is "$RC" 1 "start refused: $1"
	like "$ERR" "$2" "... says why: $1"
	like "$ERR" '^hint: ' "... and how to fix it: $1"
	like "$ERR" "bad.conf" "... names the file: $1"
	ok wait_until 3 test -z "$(repl_daemon_pids | grep -v "^$$\$" || true)"
}
refused_start "off loopback without a token" 'listens beyond loopback, but http.token is not set' \
	"listen = \"0.0.0.0:$PORT\";"
refused_start "a short token" 'shorter than 16 characters' \
	"listen = \"0.0.0.0:$PORT\"; token = \"short\";"
refused_start "a certificate without its key" 'only one of http.tls_cert and http.tls_key' \
	"listen = \"127.0.0.1:$PORT\"; tls_cert = \"/etc/hostname\";"
refused_start "a listen address that is not one" 'is not an address and a port' \
	"listen = \"127.0.0.1\";"

# ---- a console without a token (loopback) ----------------------------------------------------
write_conf ""
repl_start
cpid=$(<"$REPCTL_STATE_DIR/repctl.pid")

H=$TEST_TMP/h B=$TEST_TMP/b
# req METHOD PATH [CURL-ARGS...]: HS = status, HB = body, HH = headers
req() {
	local m=$1 p=$2
	shift 2
	HS=$(curl -s -m 20 -X "$m" -o "$B" -D "$H" -w '%{http_code}' "$@" "$BASE$p" 2>/dev/null || true)
	HB=$(<"$B")
	HH=$(tr -d '\r' <"$H")
	printf '%s\n' "$HB" >>"$TEST_TMP/all-answers"
	printf '%s\n' "$HH" >>"$TEST_TMP/all-answers"
}
up() { req GET /healthz?accept=yellow && [[ $HS == 200 || $HS == 503 ]]; }
ok wait_until 20 up
console_pid() { { ss -Hltnp "sport = :$PORT" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n 1 | cut -d= -f2; } || true; }
has_console_pid() { [[ -n $(console_pid) ]]; }
ok wait_until 10 has_console_pid
kpid=$(console_pid)
note "coordinator $cpid, console $kpid"
ok test -n "$kpid"
is "$(cut -d' ' -f1 /proc/"$kpid"/stat 2>/dev/null && awk '{print $4}' /proc/"$kpid"/stat)" "$kpid"$'\n'"$cpid" \
	"the console is a child of the coordinator"
like "$(<"$REPCTL_STATE_DIR/repctl.pid.info")" "^child $kpid " "the console is listed in the pid .info file"
like "$(<"$REPCTL_STATE_DIR/repctl.log")" "console listening on http://127.0.0.1:$PORT" "the log says where the console listens"

repl_sql a "INSERT INTO songs (id, title) VALUES (1, 'one')"
has() { [[ $(repl_val "$1" "SELECT count(*) FROM $2 WHERE $3") -ge 1 ]]; }
ok wait_until 20 has b songs "id = 1"
ok wait_until 20 has c songs "id = 1"

# ---- health -----------------------------------------------------------------------------------
green() { "$REPCTL" status --health >/dev/null 2>&1; }
ok wait_until 30 green
req GET /healthz
is "$HS" 200 "/healthz: 200 while status --health exits 0"
like "$HB" '"health": "green", "exit": 0' "... says green"
like "$HB" '"line": "green: 3 syncs healthy' "... with the line of status --health"
run_repctl pause ab
req GET /healthz
run_repctl status --health
is "$RC" 1 "status --health exits 1 while ab is paused"
is "$HS" 503 "/healthz: 503 while status --health exits 1"
like "$HB" '"health": "yellow", "exit": 1' "... says yellow"
req GET '/healthz?accept=yellow'
is "$HS" 200 "/healthz?accept=yellow: 200 on yellow"
run_repctl resume ab

# ---- conflicts and a quarantine, made while the syncs are paused -----------------------------
for s in ab ba; do run_repctl pause "$s"; done
repl_sql a "UPDATE songs SET title = 'from a', updated_at = now() WHERE id = 1;
            INSERT INTO users (id, email, name) VALUES (1, 'x@example.org', 'from a')"
repl_sql b "UPDATE songs SET title = 'from b', updated_at = now() + interval '1 second' WHERE id = 1;
            INSERT INTO users (id, email, name) VALUES (101, 'x@example.org', 'from b')"
for s in ab ba; do run_repctl resume "$s"; done
quarantined() { [[ $(meta "SELECT count(*) FROM repctl.quarantine WHERE sync = 'ab' AND resolved_at IS NULL") -ge 1 ]]; }
conflicted() { [[ $(meta "SELECT count(*) FROM repctl.conflict") -ge 1 ]]; }
ok wait_until 30 quarantined
ok wait_until 30 conflicted
same_songs() { [[ $(repl_val a "SELECT title FROM songs WHERE id = 1") == "$(repl_val b "SELECT title FROM songs WHERE id = 1")" ]]; }
ok wait_until 30 same_songs

# ---- /api/v1/status = status --json --------------------------------------------------------------
# figures that move by themselves (times, pending while runs go on) are left out; wait for a
# quiet moment where both answers agree, then compare the rest field by field
status_cmp() {
	req GET /api/v1/status
	[[ $HS == 200 ]] || return 1
	"$REPCTL" status --json >"$TEST_TMP/cli.json" 2>/dev/null || return 1
	printf '%s' "$HB" >"$TEST_TMP/api.json"
	"$PY" - "$TEST_TMP/cli.json" "$TEST_TMP/api.json" <<'PY'
import json, sys
cli, api = (json.load(open(f)) for f in sys.argv[1:3])
def pick(d):
    keep = {"syncs": ["name", "state", "health", "last_good", "last_i_u_d", "last_bad", "pending",
                      "conflicts", "quarantined", "circuit", "last_error", "paused_tables"],
            "nodes": ["node", "failures", "circuit", "warning", "last_error"],
            "folders": ["folder", "state", "health", "last_good", "last_moved", "conflicts"]}
    out = {"coordinator": d["coordinator"]}
    for k, cols in keep.items():
        out[k] = [{c: x.get(c) for c in cols} for x in d[k]]
    return out
a, b = pick(cli), pick(api)
if a != b:
    print("cli:", json.dumps(a, sort_keys=True))
    print("api:", json.dumps(b, sort_keys=True))
    sys.exit(1)
if set(cli) != set(api) or any(set(x) != set(y) for k in ("syncs", "nodes", "folders")
                               for x, y in zip(cli[k], api[k])):
    print("different keys"); sys.exit(1)
PY
}
if wait_until 40 status_cmp; then
	pass "/api/v1/status has the figures of status --json (syncs, nodes, folders, coordinator)"
else
	status_cmp || true
	fail "/api/v1/status has the figures of status --json" "$(status_cmp 2>&1 || true)"
fi
like "$HH" $'\n''Content-Type: application/json' "status: Content-Type application/json"
like "$HH" $'\n''Cache-Control: no-store' "API answers: Cache-Control: no-store"
like "$HH" $'\n'"Content-Security-Policy: default-src 'self'" "Content-Security-Policy default-src 'self'"
like "$HH" $'\n''X-Frame-Options: DENY' "X-Frame-Options: DENY"
like "$HH" $'\n''X-Content-Type-Options: nosniff' "X-Content-Type-Options: nosniff"

# ---- /api/v1/conflicts = conflicts --json ---------------------------------------------------------
req GET /api/v1/conflicts
is "$HS" 200 "GET /api/v1/conflicts"
run_repctl conflicts --json
is "$HB" "$OUT" "/api/v1/conflicts is byte for byte conflicts --json"
like "$HB" '"rule"' "... and holds conflicts"
req GET '/api/v1/conflicts?sync=ab'
run_repctl conflicts ab --json
is "$HB" "$OUT" "?sync=ab is conflicts ab --json"
req GET '/api/v1/conflicts?table=songs'
is "$("$PY" -c 'import json,sys; d=json.load(sys.stdin); print(len(d) > 0 and all(x["table_name"] == "songs" for x in d))' <<<"$HB")" True \
	"?table=songs: only songs"
req GET '/api/v1/conflicts?table=albums'
is "$HB" "[]" "?table=albums: none"
req GET '/api/v1/conflicts?since=2999-01-01'
is "$HB" "[]" "?since in the future: none"
req GET '/api/v1/conflicts?since=not-a-time'
is "$HS" 400 "?since=not-a-time: 400"
like "$HB" '^\{"error": ' "... with a JSON error"
req GET '/api/v1/conflicts?limit=1'
is "$("$PY" -c 'import json,sys; print(len(json.load(sys.stdin)))' <<<"$HB")" 1 "?limit=1: one"

# ---- /metrics ----------------------------------------------------------------------------------------
good_runs_before=$(meta "SELECT count(*) FROM repctl.run WHERE sync = 'ac' AND ok AND ended_at IS NOT NULL")
req GET /metrics
is "$HS" 200 "GET /metrics"
like "$HH" $'\n''Content-Type: text/plain; version=0.0.4' "/metrics: the text format's content type"
printf '%s\n' "$HB" >"$TEST_TMP/metrics.txt"
# a strict parser of the text format 0.0.4; prints "name{labels} value" per sample, sorted
cat >"$TEST_TMP/promparse.py" <<'PY'
import math, re, sys
NAME = re.compile(r'[a-zA-Z_:][a-zA-Z0-9_:]*$')
LABEL = re.compile(r'[a-zA-Z_][a-zA-Z0-9_]*$')
types, helps, seen, out = {}, {}, set(), []
def die(n, msg, line):
    sys.exit("line %d: %s: %r" % (n, msg, line))
text = open(sys.argv[1], encoding="utf-8").read()
if not text.endswith("\n"):
    sys.exit("no final newline")
for n, line in enumerate(text.split("\n")[:-1], 1):
    if line == "":
        continue
    if line.startswith("#"):
        parts = line.split(" ", 3)
        if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
            if not NAME.match(parts[2]):
                die(n, "bad metric name", line)
            if parts[1] == "TYPE":
                if parts[2] in types or len(parts) != 4 or parts[3] not in ("counter", "gauge", "histogram", "summary", "untyped"):
                    die(n, "bad or repeated TYPE", line)
                if any(s.startswith(parts[2] + "{") or s == parts[2] for s in seen):
                    die(n, "TYPE after samples", line)
                types[parts[2]] = parts[3]
            else:
                if parts[2] in helps or len(parts) != 4:
                    die(n, "bad or repeated HELP", line)
                helps[parts[2]] = parts[3]
        continue
    m = re.match(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)( -?\d+)?$', line)
    if not m:
        die(n, "not a sample", line)
    name, labels, value = m.group(1), m.group(3), m.group(4)
    if name not in types:
        die(n, "sample without TYPE", line)
    if types[name] == "counter" and not name.endswith("_total"):
        die(n, "counter not named _total", line)
    lab = []
    if labels is not None:
        i = 0
        while i < len(labels):
            lm = re.match(r'([a-zA-Z_][a-zA-Z0-9_]*)="', labels[i:])
            if not lm or not LABEL.match(lm.group(1)):
                die(n, "bad label", line)
            i += lm.end()
            v = ""
            while True:
                if i >= len(labels):
                    die(n, "unterminated label value", line)
                c = labels[i]
                if c == "\\":
                    if i + 1 >= len(labels) or labels[i + 1] not in '\\"n':
                        die(n, "bad escape", line)
                    v += {"\\": "\\", '"': '"', "n": "\n"}[labels[i + 1]]
                    i += 2
                elif c == '"':
                    i += 1
                    break
                elif c == "\n":
                    die(n, "raw newline", line)
                else:
                    v += c
                    i += 1
            lab.append((lm.group(1), v))
            if i < len(labels):
                if labels[i] != ",":
                    die(n, "labels not comma separated", line)
                i += 1
    if len(set(k for k, _ in lab)) != len(lab):
        die(n, "repeated label", line)
    if value not in ("NaN", "+Inf", "-Inf"):
        try:
            f = float(value)
        except ValueError:
            die(n, "bad value", line)
        if math.isnan(f) or math.isinf(f):
            die(n, "bad value spelling", line)
    key = name + "{" + ",".join('%s="%s"' % kv for kv in sorted(lab)) + "}"
    if key in seen:
        die(n, "duplicate series", line)
    seen.add(key)
    out.append("%s %s" % (key, value))
for name in types:
    if name not in helps:
        sys.exit("no HELP for " + name)
print("\n".join(sorted(out)))
PY
if "$PY" "$TEST_TMP/promparse.py" "$TEST_TMP/metrics.txt" >"$TEST_TMP/samples.txt" 2>"$TEST_TMP/promparse.err"; then
	pass "/metrics parses with the strict text-format parser ($(wc -l <"$TEST_TMP/samples.txt") samples)"
else
	fail "/metrics parses with the strict text-format parser" "$(cat "$TEST_TMP/promparse.err")"
fi
if "$PY" -c 'import prometheus_client' 2>/dev/null; then
	if "$PY" -c '
import sys
from prometheus_client.parser import text_string_to_metric_families
n = sum(len(f.samples) for f in text_string_to_metric_families(open(sys.argv[1]).read()))
assert n > 0' "$TEST_TMP/metrics.txt" 2>"$TEST_TMP/pc.err"; then
		pass "/metrics parses with prometheus_client's parser"
	else
		fail "/metrics parses with prometheus_client's parser" "$(cat "$TEST_TMP/pc.err")"
	fi
else
	note "prometheus_client not installed: its parser is not tried"
fi
sample() { grep -F "$1 " "$TEST_TMP/samples.txt" | awk '{print $NF}'; }
for m in repctl_sync_lag_seconds repctl_sync_pending_rows repctl_sync_last_good_run_timestamp_seconds \
	repctl_sync_runs_total repctl_sync_rows_total repctl_sync_conflicts_total repctl_sync_quarantined \
	repctl_node_up repctl_node_clock_offset_seconds repctl_folder_files_total repctl_folder_bytes_total \
	repctl_folder_conflict_copies repctl_coordinator_rss_bytes repctl_coordinator_workers; do
	like "$(grep "^# TYPE $m " "$TEST_TMP/metrics.txt" || true)" "^# TYPE $m (gauge|counter)$" "/metrics declares $m"
done
jq_status() { "$PY" -c "import json,sys; d=json.load(open('$TEST_TMP/api.json')); print($1)"; }
is "$(sample 'repctl_sync_quarantined{sync="ab"}')" "$(jq_status '[s for s in d["syncs"] if s["name"]=="ab"][0]["quarantined"]')" \
	"repctl_sync_quarantined{sync=ab} = status's quarantined"
is "$(sample 'repctl_sync_conflicts_total{sync="ab"}')" "$(meta "SELECT count(*) FROM repctl.conflict WHERE sync = 'ab'")" \
	"repctl_sync_conflicts_total{sync=ab} = the conflicts logged"
# runs go on meanwhile: the figure lies between the table's counts before and after
good_runs=$(meta "SELECT count(*) FROM repctl.run WHERE sync = 'ac' AND ok AND ended_at IS NOT NULL")
got_runs=$(sample 'repctl_sync_runs_total{result="good",sync="ac"}')
if ((got_runs >= good_runs_before && got_runs <= good_runs)); then
	pass "repctl_sync_runs_total{sync=ac,result=good} = the good runs ($got_runs)"
else
	fail "repctl_sync_runs_total{sync=ac,result=good} = the good runs" \
		"metric $got_runs, table $good_runs_before before and $good_runs after"
fi
is "$(sample 'repctl_sync_rows_total{op="insert",sync="ac"}')" \
	"$(meta "SELECT sum(inserts) FROM repctl.run WHERE sync = 'ac'")" "repctl_sync_rows_total{op=insert,sync=ac} = inserts of its runs"
is "$(sample 'repctl_node_up{node="a"}')" 1 "repctl_node_up{node=a} = 1"
like "$(sample 'repctl_coordinator_rss_bytes{}')" '^[1-9][0-9]+$' "repctl_coordinator_rss_bytes is a size"
is "$(sample 'repctl_coordinator_workers{}')" "$(grep -c '^child ' "$REPCTL_STATE_DIR/repctl.pid.info")" \
	"repctl_coordinator_workers = the children in the pid .info file"
like "$(sample 'repctl_sync_pending_rows{sync="ac"}')" '^[0-9]+$' "repctl_sync_pending_rows{sync=ac} is counted"

# ---- actions -------------------------------------------------------------------------------------------
runs_of() { meta "SELECT count(*) FROM repctl.run WHERE sync = '$1'"; }
req POST /api/v1/syncs/ac/kick
is "$HS" 200 "POST kick ac: 200"
like "$HB" '"ok": true, "sync": "ac", "action": "kick", "since": "' "... JSON with the time of the kick"
since=$("$PY" -c 'import json,sys; print(json.load(sys.stdin)["since"])' <<<"$HB")
new_run() { [[ $(meta "SELECT count(*) FROM repctl.run WHERE sync = 'ac' AND started_at >= '$since'") -ge 1 ]]; }
ok wait_until 20 new_run
req POST /api/v1/syncs/ab/pause
is "$HS" 200 "POST pause ab: 200"
is "$(meta "SELECT status FROM repctl.sync WHERE name = 'ab'")" paused "pause: the sync is paused"
run_repctl status ab
like "$OUT" 'state +paused' "pause: status says paused"
req POST /api/v1/syncs/ab/resume
is "$HS" 200 "POST resume ab: 200"
is "$(meta "SELECT status FROM repctl.sync WHERE name = 'ab'")" active "resume: the sync is active again"
req POST /api/v1/syncs/nosuch/kick
is "$HS" 404 "kick an unknown sync: 404"
like "$HB" "no sync 'nosuch'" "... saying so"

# quarantine: a's user 1 collides on b with b's user 101 (the same email)
qid=$(meta "SELECT id FROM repctl.quarantine WHERE sync = 'ab' AND resolved_at IS NULL ORDER BY id LIMIT 1")
req GET /api/v1/quarantine
like "$HB" "\"id\": ?$qid" "GET /api/v1/quarantine lists quarantined row $qid"
req POST "/api/v1/quarantine/$qid/resolve" -d keep=incoming -d dry_run=1
is "$HS" 200 "resolve dry_run=1: 200"
like "$HB" '"dry_run": true, "rows": \[\{"node": "b", "key": \{"id": 101\}' "dry run lists b's colliding row 101"
like "$HB" 'nothing was changed' "... and says nothing was changed"
is "$(repl_val b "SELECT count(*) FROM users WHERE id = 101")" 1 "dry run: b's row 101 is still there"
req POST "/api/v1/quarantine/$qid/resolve" -d keep=sideways
is "$HS" 400 "keep=sideways: 400"
req POST "/api/v1/quarantine/$qid/resolve"
is "$HS" 400 "resolve without keep: 400"
req POST /api/v1/quarantine/999999/resolve -d keep=incoming
is "$HS" 404 "resolve an unknown id: 404"
req POST "/api/v1/quarantine/$qid/resolve" -d keep=incoming
is "$HS" 200 "resolve keep=incoming: 200"
like "$HB" '"dry_run": false, "rows": \[\{"node": "b", "key": \{"id": 101\}' "... deleted b's row 101"
is "$(repl_val b "SELECT count(*) FROM users WHERE id = 101")" 0 "b's colliding row is gone"
req POST "/api/v1/syncs/ab/kick"
settled() {
	[[ $(meta "SELECT count(*) FROM repctl.quarantine WHERE resolved_at IS NULL") == 0 &&
		$(repl_val b "SELECT count(*) FROM users WHERE id = 1") == 1 &&
		$(repl_val a "SELECT count(*) FROM users WHERE id = 101") == 0 ]]
}
ok wait_until 40 settled
req POST "/api/v1/quarantine/$qid/resolve" -d keep=incoming
is "$HS" 409 "resolving it again: 409 (resolved already)"

# ---- the folder ----------------------------------------------------------------------------------------
meta "INSERT INTO repctl.folder (name) VALUES ('music');
      INSERT INTO repctl.folder_node (folder, node, path, ord) VALUES ('music', 'a', '$TEST_TMP/nowhere-a', 0),
        ('music', 'b', '$TEST_TMP/nowhere-b', 1);
      INSERT INTO repctl.folder_run (folder, ended_at, ok, files, bytes, conflicts)
        VALUES ('music', now(), true, 7, 7000, 2)" >/dev/null
run_repctl reload
folder_runs() { meta "SELECT count(*) FROM repctl.folder_run WHERE folder = 'music'"; }
more_folder_runs() { (($(folder_runs) > $1)); }
ok wait_until 30 more_folder_runs 1
console_back() { req GET /healthz?accept=yellow && [[ $HS == 200 || $HS == 503 ]]; }
ok wait_until 20 console_back
fr=$(folder_runs)
req POST /api/v1/folders/music/sync
is "$HS" 200 "POST folder sync: 200"
ok wait_until 20 more_folder_runs "$fr"
req POST /api/v1/folders/nosuch/sync
is "$HS" 404 "folder sync of an unknown folder: 404"
req GET /metrics
printf '%s\n' "$HB" >"$TEST_TMP/metrics.txt"
"$PY" "$TEST_TMP/promparse.py" "$TEST_TMP/metrics.txt" >"$TEST_TMP/samples.txt" || fail "/metrics with a folder parses"
ok test "$(sample 'repctl_folder_files_total{folder="music"}')" -ge 7
ok test "$(sample 'repctl_folder_bytes_total{folder="music"}')" -ge 7000
ok test "$(sample 'repctl_folder_conflict_copies{folder="music"}')" -ge 2

# ---- errors -------------------------------------------------------------------------------------------
json_error() { like "$HB" '^\{"error": ".+"\}$' "$1: a JSON error"; }
req GET /no/such/page
is "$HS" 404 "unknown path: 404"
json_error "unknown path"
req GET /api/v1/syncs/ab/kick
is "$HS" 405 "GET on an action: 405"
like "$HH" $'\n''Allow: POST' "... with Allow: POST"
json_error "wrong method"
req DELETE /api/v1/status
is "$HS" 405 "DELETE /api/v1/status: 405"
req POST /api/v1/status
is "$HS" 405 "POST /api/v1/status: 405"
head -c 200000 /dev/zero | tr '\0' a >"$TEST_TMP/big"
req POST /api/v1/syncs/ab/kick --data-binary @"$TEST_TMP/big"
is "$HS" 413 "a 200 kB body: 413"
req POST /api/v1/syncs/ab/kick -H 'Content-Type: application/json' -d '{"x": 1}'
is "$HS" 415 "a JSON body: 415"
json_error "wrong content type"
req GET /api/v1/status -H 'Host: evil.example:80'
is "$HS" 403 "a foreign Host header without a token: 403 (DNS rebinding)"
req POST /api/v1/syncs/ab/kick -H "Origin: http://evil.example"
is "$HS" 403 "a browser POST (Origin) without the CSRF token: 403"
like "$HB" 'CSRF' "... naming the CSRF token"
req GET '/sync/..%2F..%2Fetc'
is "$HS" 404 "a path with dots and slashes in a name: 404"
req GET /sync/nosuch
is "$HS" 404 "the page of an unknown sync: 404"

# pages render (their content is the browser test's business)
for p in / /sync/ab /conflicts /quarantine /folders /login '/conflicts?sync=ab&since=2000-01-01'; do
	req GET "$p"
	is "$HS" 200 "GET $p: 200"
done
req GET / -H 'X-Repctl-Partial: 1'
unlike "$HB" '<html' "a partial refresh is the main content only"
like "$HB" '<h1>Fleet</h1>' "... the fleet content"

# ---- the console's process: a crash is restarted, replication goes on --------------------------
kpid=$(console_pid)
kill -KILL "$kpid"
new_console() { local p; p=$(console_pid) && [[ -n $p && $p != "$kpid" ]] && up; }
repl_sql a "INSERT INTO songs (id, title) VALUES (2, 'while the console was down')"
ok wait_until 20 has b songs "id = 2"
ok wait_until 20 new_console
like "$(<"$REPCTL_STATE_DIR/repctl.log")" "console +killed by signal 9, restarting" "the coordinator restarted the killed console"
kpid=$(console_pid)
ok pid_running "$cpid"

# ---- fuzz ------------------------------------------------------------------------------------------------
cat >"$TEST_TMP/fuzz.py" <<'PY'
import random, socket, sys, time
port, seed = int(sys.argv[1]), int(sys.argv[2])
rnd = random.Random(seed)
methods = ["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "TRACE", "CONNECT", "G\x00T", "", "GETT" * 50]
paths = ["/", "/api/v1/status", "/api/v1/conflicts?since=%ff%fe", "/api/v1/syncs/ab/kick", "/api/v1/syncs/%00/kick",
         "/api/v1/quarantine/-1/resolve", "/api/v1/quarantine/99999999999999999999/resolve", "/metrics", "/healthz",
         "/sync/" + "a" * 5000, "/static/../../etc/passwd", "/static/console.js", "//", "/api/v1/" + "x/" * 200,
         "/api/v1/folders/music/sync", "/login", "/conflicts?sync=" + "%" * 100, "*", "http://evil/x", "/%", "/\u00e9"]
headers = ["Host: 127.0.0.1", "Content-Type: application/x-www-form-urlencoded", "Content-Length: 5",
           "Content-Length: -1", "Content-Length: 99999999999999999999", "Transfer-Encoding: chunked",
           "Cookie: repctl_session=a.1.zz", "Cookie: repctl_session=" + "x" * 3000, "Authorization: Bearer x",
           "Authorization: Basic Zm9vOmJhcg==", "Origin: null", "X-Repctl-Partial: 1", "Expect: 100-continue",
           "Range: bytes=0-1", "Accept: */*", "X" * 9000 + ": y", "Bad Header Line", ": empty"]
def one():
    s = socket.create_connection(("127.0.0.1", port), timeout=3)
    try:
        m, p = rnd.choice(methods), rnd.choice(paths)
        hs = rnd.sample(headers, rnd.randint(0, 5))
        body = bytes(rnd.getrandbits(8) for _ in range(rnd.choice([0, 0, 3, 64, 3000])))
        req = ("%s %s HTTP/1.%d\r\n" % (m, p, rnd.choice([0, 1]))).encode("utf-8", "replace")
        req += "".join(h + "\r\n" for h in hs).encode() + b"\r\n" + body
        if rnd.random() < 0.1:
            req = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 600)))
        s.sendall(req)
        s.shutdown(socket.SHUT_WR)
        while s.recv(65536):
            pass
    except OSError:
        pass
    finally:
        s.close()
for _ in range(int(sys.argv[3])):
    one()
# a slow client: the request line and headers one byte at a time
s = socket.create_connection(("127.0.0.1", port), timeout=10)
for ch in b"GET /api/v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n":
    s.send(bytes([ch]))
    time.sleep(0.02)
print("slow client answered:", s.recv(64)[:12])
s.close()
# clients that announce a body and never send it, and one that never stops sending
idle = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(8)]
for c in idle:
    c.send(b"POST /api/v1/syncs/ab/kick HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\nab")
s = socket.create_connection(("127.0.0.1", port), timeout=5)
s.send(b"POST /api/v1/syncs/ab/kick HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
       b"Content-Type: application/x-www-form-urlencoded\r\n\r\n")
try:
    for _ in range(300):
        s.send(b"1000\r\n" + b"a" * 4096 + b"\r\n")
except OSError:
    pass
s.close()
for c in idle:
    c.close()
PY
before=$(meta "SELECT count(*) FROM repctl.run")
if "$PY" "$TEST_TMP/fuzz.py" "$PORT" "${REPL_SEED:-16}" 400 >"$TEST_TMP/fuzz.out" 2>&1; then
	pass "fuzz: 400 random requests, a slow client, stalled and endless bodies ($(tr '\n' ' ' <"$TEST_TMP/fuzz.out"))"
else
	fail "fuzz ran" "$(tail -n 20 "$TEST_TMP/fuzz.out")"
fi
like "$(<"$TEST_TMP/fuzz.out")" "slow client answered: b'HTTP/1.1 200" "the slow client got its answer"
ok pid_running "$kpid"
is "$(console_pid)" "$kpid" "the console process survived the fuzz (same pid)"
ok pid_running "$cpid"
req GET /api/v1/status
is "$HS" 200 "after the fuzz: /api/v1/status answers"
repl_sql a "INSERT INTO songs (id, title) VALUES (3, 'after the fuzz')"
ok wait_until 20 has b songs "id = 3"
ok wait_until 20 has c songs "id = 3"
ok test "$(meta "SELECT count(*) FROM repctl.run")" -gt "$before"

# ---- no secret in any answer ---------------------------------------------------------------------
unlike "$(<"$TEST_TMP/all-answers")" "$SECRET_PW" "no answer holds the metadata conninfo's password"

# ---- with tokens ---------------------------------------------------------------------------------------
ADMIN=admin-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
RO=readonly-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
run_repctl stop
is "$RC" 0 "stop the coordinator"
write_conf "token = \"$ADMIN\"; readonly_token = \"$RO\";"
run_repctl config
like "$OUT" 'http.token = "\(set, [0-9]+ characters\)"' "config does not print the token"
unlike "$OUT" "$ADMIN|$RO" "... nor the read-only token"
repl_start
ok wait_until 20 up
req GET /api/v1/status
is "$HS" 401 "token configured: GET without a token: 401"
like "$HH" $'\n''WWW-Authenticate: Bearer' "... with WWW-Authenticate: Bearer"
req GET /metrics
is "$HS" 401 "... /metrics too"
req GET /api/v1/status -H "Authorization: Bearer wrong-token-wrong-token"
is "$HS" 401 "a wrong bearer token: 401"
req GET /api/v1/status -H "Authorization: Bearer $RO"
is "$HS" 200 "the read-only token reads"
req POST /api/v1/syncs/ab/pause -H "Authorization: Bearer $RO"
is "$HS" 403 "the read-only token cannot act: 403"
is "$(meta "SELECT status FROM repctl.sync WHERE name = 'ab'")" active "... and ab is not paused"
req POST /api/v1/syncs/ab/pause
is "$HS" 401 "no token: an action is refused with 401, on loopback too"
req POST /api/v1/syncs/ab/pause -H "Authorization: Bearer $ADMIN"
is "$HS" 200 "the admin token acts"
is "$(meta "SELECT status FROM repctl.sync WHERE name = 'ab'")" paused "... ab is paused"
req POST /api/v1/syncs/ab/resume -H "Authorization: Bearer $ADMIN"
is "$HS" 200 "... and resumed"
req GET /healthz
like "$HS" '^(200|503)$' "/healthz answers without a token"
unlike "$HB" '"line"' "... with the word only"
req GET /
is "$HS" 303 "a page without a login: redirected"
like "$HH" $'\n''Location: /login' "... to /login"
# login with the read-only token, then the admin token
jar=$TEST_TMP/jar
req POST /login -c "$jar" -d "token=$RO"
is "$HS" 303 "login with the read-only token"
like "$HH" 'Set-Cookie: repctl_session=r\.[0-9]+\.[0-9a-f]+; Path=/; HttpOnly; SameSite=Strict' "... sets an HttpOnly SameSite=Strict cookie"
req GET / -b "$jar"
is "$HS" 200 "read-only login: the fleet page"
req POST /api/v1/syncs/ab/kick -b "$jar"
is "$HS" 403 "read-only login: cannot act"
req POST /login -c "$jar" -d "token=nope-nope-nope-nope"
is "$HS" 401 "a wrong login: 401"
req POST /login -c "$jar" -d "token=$ADMIN"
is "$HS" 303 "login with the admin token"
req GET /sync/ab -b "$jar"
is "$HS" 200 "admin login: the sync page"
csrf=$(grep -o 'name="csrf" value="[0-9a-f]*"' <<<"$HB" | head -n 1 | sed 's/.*value="//; s/"//')
like "$csrf" '^[0-9a-f]{64}$' "the page's forms carry a CSRF token"
req POST /api/v1/syncs/ab/kick -b "$jar"
is "$HS" 403 "admin login without the CSRF token: 403"
req POST /api/v1/syncs/ab/kick -b "$jar" -d "csrf=${csrf:0:63}0"
is "$HS" 403 "admin login with a wrong CSRF token: 403"
req POST /api/v1/syncs/ab/kick -b "$jar" -d "csrf=$csrf" -d return_to=/sync/ab
is "$HS" 303 "admin login with its CSRF token acts (a plain form post is sent back to its page)"
like "$HH" $'\n''Location: /sync/ab' "... to /sync/ab"
req POST /api/v1/syncs/ab/kick -b "$jar" -d "csrf=$csrf" -H 'Accept: application/json'
is "$HS" 200 "... and answers JSON to the page's script"
unlike "$(<"$TEST_TMP/all-answers")" "$ADMIN|$RO|$SECRET_PW" "no answer ever holds a token or the password"

# ---- the metadata database goes away and comes back ------------------------------------------
pg_stop meta
req GET /healthz -H "Authorization: Bearer $RO"
is "$HS" 503 "metadata database down: /healthz 503"
like "$HB" '"health": "unknown", "exit": 3, "line": "unknown: ' "... unknown, as status --health says"
req GET /healthz -H "Authorization: Bearer $RO"
like "$HB" '"health": "unknown", "exit": 3, "line": "unknown: cannot connect to the metadata database' \
	"... next time: cannot connect (the broken connection was dropped)"
unlike "$HB" "$SECRET_PW" "... the conninfo in the message is redacted"
req GET /api/v1/status -H "Authorization: Bearer $RO"
is "$HS" 503 "metadata database down: /api/v1/status 503"
json_error "metadata database down"
pg_start meta
meta_back() { req GET /api/v1/status -H "Authorization: Bearer $RO" && [[ $HS == 200 ]]; }
ok wait_until 30 meta_back

# ---- HTTPS -----------------------------------------------------------------------------------------
if command -v openssl >/dev/null; then
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
		-keyout "$TEST_TMP/key.pem" -out "$TEST_TMP/cert.pem" >/dev/null 2>&1
	run_repctl stop
	write_conf "token = \"$ADMIN\"; tls_cert = \"$TEST_TMP/cert.pem\"; tls_key = \"$TEST_TMP/key.pem\";"
	repl_start
	BASE="https://127.0.0.1:$PORT"
	tls_up() { req GET /api/v1/status --cacert "$TEST_TMP/cert.pem" -H "Authorization: Bearer $ADMIN" && [[ $HS == 200 ]]; }
	if wait_until 20 tls_up; then
		pass "https: /api/v1/status answers over TLS with the configured certificate"
	else
		fail "https: /api/v1/status answers over TLS" "$HS $HB"
	fi
	req POST /login --cacert "$TEST_TMP/cert.pem" -d "token=$ADMIN"
	like "$HH" 'Set-Cookie: repctl_session=.*; Secure' "https: the login cookie is Secure"
	BASE="http://127.0.0.1:$PORT"
	req GET /api/v1/status -H "Authorization: Bearer $ADMIN"
	unlike "$HS" '^2' "https: plain HTTP is not served"
else
	note "openssl is not installed: HTTPS not tried"
fi

repl_no_daemon_san
done_testing
