#!/usr/bin/env bash
# tests/integration/t_console_browser.sh - issue 16: the web console in a real
# browser (headless Chromium, driven through its DevTools protocol), against
# a running coordinator with nodes a and b (syncs ab, ba), a users table
# with a unique email (for a quarantined row), a logged conflict and a folder.
#
# Proves:
#  - the fleet page loads (syncs, nodes, folders with health colours) and
#    also reads without JavaScript (--blink-settings=scriptEnabled=false);
#  - a change on a node (3 rows inserted on a) and a pause show up on the
#    open page without a reload (a marker set in the page survives);
#  - "Sync now" on the sync page makes a new run; its chart is an SVG;
#  - the conflicts page shows both versions side by side, the differing
#    column highlighted;
#  - a quarantined row is resolved from the page: "Keep incoming" shows
#    the colliding row first (a dry run), "Confirm" deletes it, and the
#    quarantine is settled by the next runs;
#  - screenshots of each page are written to docs/img/console-*.png
#    (CONSOLE_SHOTS_DIR overrides the directory).
# Skipped when chromium or python3's websocket module is missing.
# shellcheck disable=SC2317 # helpers are called through wait_until / ok
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/common.sh"

CHROME=$(command -v chromium || command -v chromium-browser || true)
[[ -n $CHROME ]] || skip_all "chromium is not installed (apt-get install chromium)"
PY=/usr/bin/python3
[[ -x $PY ]] || PY=python3
"$PY" -c 'import websocket' 2>/dev/null || skip_all "python3's websocket module is missing (apt-get install python3-websocket)"
command -v curl >/dev/null || skip_all "curl is not installed"

# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/pg.sh"
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/fixtures.sh"
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/repl.sh"

SHOTS=${CONSOLE_SHOTS_DIR:-$ROOT/docs/img}
mkdir -p "$SHOTS"

REPL_SCHEMA_SQL+="
CREATE TABLE public.users (id bigint PRIMARY KEY, email text NOT NULL UNIQUE, name text,
    updated_at timestamptz NOT NULL DEFAULT now());"
repl_setup a b
for e in ab:a:b ba:b:a; do
	IFS=: read -r s src tgt <<<"$e"
	run_repctl add sync "$s" relgroup="$REPL_HERD" dbs="$src:source,$tgt:target" conflict_strategy=latest
	is "$RC" 0 "add sync $s"
done
meta() { pg_psql meta postgres -c "$1"; }
free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
BASE="http://127.0.0.1:$PORT"
repl_config "retry = { min = 1; max = 2; };
sync_interval = 120;
http = { listen = \"127.0.0.1:$PORT\"; };"
meta "INSERT INTO repctl.folder (name, status) VALUES ('music', 'paused');
      INSERT INTO repctl.folder_node (folder, node, path, ord) VALUES ('music', 'a', '/srv/music', 0),
        ('music', 'b', '/srv/music', 1);
      INSERT INTO repctl.folder_run (folder, started_at, ended_at, ok, files, bytes, conflicts)
        VALUES ('music', now() - interval '3 seconds', now(), true, 42, 123456789, 1)" >/dev/null
# paused: its worker would fail (the nodes have no ssh=); its rows and run are shown
repl_start
up() { curl -sf -o /dev/null "$BASE/api/v1/status"; }
ok wait_until 20 up

# a conflict and a quarantined row, made while the syncs are paused
repl_sql a "INSERT INTO songs (id, title) VALUES (1, 'one')"
has() { [[ $(repl_val "$1" "SELECT count(*) FROM $2 WHERE $3") -ge 1 ]]; }
ok wait_until 20 has b songs "id = 1"
for s in ab ba; do run_repctl pause "$s"; done
repl_sql a "UPDATE songs SET title = 'from a', plays = 1, updated_at = now() WHERE id = 1;
            INSERT INTO users (id, email, name) VALUES (1, 'x@example.org', 'from a')"
repl_sql b "UPDATE songs SET title = 'from b', updated_at = now() + interval '1 second' WHERE id = 1;
            INSERT INTO users (id, email, name) VALUES (101, 'x@example.org', 'from b')"
for s in ab ba; do run_repctl resume "$s"; done
quarantined() { [[ $(meta "SELECT count(*) FROM repctl.quarantine WHERE sync = 'ab' AND resolved_at IS NULL") -ge 1 ]]; }
ok wait_until 30 quarantined
conflicted() { [[ $(meta "SELECT count(*) FROM repctl.conflict") -ge 1 ]]; }
ok wait_until 30 conflicted

# ---- the browser ------------------------------------------------------------------------------
DPORT=$(free_port)
"$CHROME" --headless=new --no-sandbox --disable-gpu --no-first-run --disable-extensions \
	--user-data-dir="$TEST_TMP/chrome" --remote-debugging-address=127.0.0.1 \
	--remote-debugging-port="$DPORT" --window-size=1280,900 about:blank \
	>"$TEST_TMP/chrome.log" 2>&1 &
chrome_pid=$!
cleanup_push "kill $chrome_pid 2>/dev/null || true; wait $chrome_pid 2>/dev/null || true"
devtools_up() { curl -sf "http://127.0.0.1:$DPORT/json/list" | grep -q webSocketDebuggerUrl; }
ok wait_until 30 devtools_up

cat >"$TEST_TMP/cdp.py" <<'PY'
# cdp.py PORT nav URL | eval JS | shot FILE: one DevTools command on the first page
import base64, json, sys, time, urllib.request
import websocket
port, cmd, arg = sys.argv[1], sys.argv[2], sys.argv[3]
pages = [t for t in json.load(urllib.request.urlopen("http://127.0.0.1:%s/json/list" % port)) if t["type"] == "page"]
ws = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=30, suppress_origin=True)
n = 0
def call(method, **params):
    global n
    n += 1
    ws.send(json.dumps({"id": n, "method": method, "params": params}))
    while True:
        m = json.loads(ws.recv())
        if m.get("id") == n:
            if "error" in m:
                sys.exit("%s: %s" % (method, m["error"]))
            return m["result"]
def evaluate(js):
    r = call("Runtime.evaluate", expression=js, returnByValue=True, awaitPromise=True)
    if "exceptionDetails" in r:
        sys.exit("exception: %s" % r["exceptionDetails"])
    return r["result"].get("value")
if cmd == "nav":
    call("Page.navigate", url=arg)
    for _ in range(200):
        time.sleep(0.05)
        if evaluate("document.readyState") == "complete" and evaluate("location.href") != "about:blank":
            break
    print(evaluate("location.href"))
elif cmd == "eval":
    v = evaluate(arg)
    print(v if isinstance(v, str) else json.dumps(v))
elif cmd == "nojs":
    # the page as a browser without JavaScript shows it (the DOM read through DevTools)
    call("Emulation.setScriptExecutionDisabled", value=True)
    call("Page.navigate", url=arg)
    time.sleep(2)
    root = call("DOM.getDocument", depth=-1)["root"]["nodeId"]
    print(call("DOM.getOuterHTML", nodeId=root)["outerHTML"])
    call("Emulation.setScriptExecutionDisabled", value=False)
elif cmd == "shot":
    call("Emulation.setDeviceMetricsOverride", width=1280, height=900, deviceScaleFactor=1, mobile=False)
    h = evaluate("Math.min(2400, document.documentElement.scrollHeight)")
    call("Emulation.setDeviceMetricsOverride", width=1280, height=int(h), deviceScaleFactor=1, mobile=False)
    data = call("Page.captureScreenshot", format="png")["data"]
    open(arg, "wb").write(base64.b64decode(data))
    print(arg)
PY
cdp() { "$PY" "$TEST_TMP/cdp.py" "$DPORT" "$@"; }
js_true() { [[ $(cdp eval "$1" 2>/dev/null) == true ]]; }
shot() {
	if cdp shot "$SHOTS/console-$1.png" >/dev/null && [[ -s $SHOTS/console-$1.png ]]; then
		pass "screenshot docs/img/console-$1.png"
	else
		fail "screenshot docs/img/console-$1.png"
	fi
}

# ---- fleet -------------------------------------------------------------------------------------------
cdp nav "$BASE/" >/dev/null
is "$(cdp eval "document.querySelector('h1').textContent")" Fleet "the fleet page loads"
like "$(cdp eval "document.querySelector('main').innerText")" 'ab' "... listing sync ab"
ok js_true "document.querySelectorAll('.badge.h-green, .badge.h-yellow').length >= 2"
like "$(cdp eval "[...document.querySelectorAll('h2')].map(h => h.textContent).join(',')")" '^Syncs,Nodes,Folders$' \
	"... with tables of syncs, nodes and folders"
like "$(cdp eval "document.querySelector('main').innerText")" 'music' "... and the folder"
health_ab=$(meta "SELECT CASE WHEN count(*) > 0 THEN 'yellow' END FROM repctl.quarantine WHERE sync = 'ab' AND resolved_at IS NULL")
ok js_true "[...document.querySelectorAll('tr')].some(r => r.innerText.startsWith('ab') && r.querySelector('.h-${health_ab:-green}'))"
shot fleet

# live: a marker in the page, then changes on a node; the page shows them without a reload
cdp eval "window.repctlMarker = 16; true" >/dev/null
repl_sql a "INSERT INTO songs (id, title) VALUES (11, 'x'), (12, 'y'), (13, 'z')"
live_rows() { js_true "window.repctlMarker === 16 && [...document.querySelectorAll('tr')].some(r => r.innerText.startsWith('ab') && r.innerText.includes('3/0/0'))"; }
if wait_until 30 live_rows; then
	pass "3 rows inserted on a show up as I/U/D 3/0/0 without a reload"
else
	fail "3 rows inserted on a show up without a reload" "$(cdp eval "document.querySelector('main').innerText")"
fi
run_repctl pause ba
live_pause() { js_true "window.repctlMarker === 16 && [...document.querySelectorAll('tr')].some(r => r.innerText.startsWith('ba') && r.innerText.includes('paused'))"; }
ok wait_until 20 live_pause
run_repctl resume ba

# without JavaScript the page still reads
cdp nojs "$BASE/" >"$TEST_TMP/nojs.html" 2>&1 || true
like "$(<"$TEST_TMP/nojs.html")" '<h1>Fleet</h1>' "without JavaScript: the fleet page"
like "$(<"$TEST_TMP/nojs.html")" 'href="/sync/ab"' "... with its syncs"
unlike "$(<"$TEST_TMP/nojs.html")" 'repctlMarker' "... freshly loaded"

# ---- sync: Sync now ---------------------------------------------------------------------------------
cdp nav "$BASE/sync/ab" >/dev/null
ok js_true "document.querySelector('svg.chart') !== null"
runs=$(meta "SELECT count(*) FROM repctl.run WHERE sync = 'ab'")
cdp eval "[...document.querySelectorAll('button')].find(b => b.textContent === 'Sync now').click(); true" >/dev/null
more_runs() { (($(meta "SELECT count(*) FROM repctl.run WHERE sync = 'ab' AND ended_at IS NOT NULL") > runs)); }
ok wait_until 20 more_runs
flash() { [[ $(cdp eval "document.getElementById('flash').textContent") == *kicked* ]]; }
ok wait_until 10 flash
shot sync

# ---- conflicts ---------------------------------------------------------------------------------------
cdp nav "$BASE/conflicts" >/dev/null
ok js_true "document.querySelectorAll('.conflict').length >= 1"
ok js_true "[...document.querySelectorAll('.conflict td.diff')].some(td => td.innerText.includes('from'))"
like "$(cdp eval "document.querySelector('.conflict').innerText")" 'winner' "a conflict names its winner"
shot conflicts

# ---- folders ---------------------------------------------------------------------------------------
cdp nav "$BASE/folders" >/dev/null
like "$(cdp eval "document.querySelector('main').innerText")" 'Folder music' "the folders page"
ok js_true "[...document.querySelectorAll('button')].some(b => b.textContent === 'Sync folder now')"
shot folders

# ---- quarantine: Keep incoming, from the page --------------------------------------------------------
cdp nav "$BASE/quarantine" >/dev/null
like "$(cdp eval "document.querySelector('main').innerText")" 'x@example.org' "the quarantine page shows the refused row"
shot quarantine
cdp eval "[...document.querySelectorAll('a')].find(a => a.textContent.startsWith('Keep incoming')).click(); true" >/dev/null
confirm_page() { js_true "location.pathname.startsWith('/quarantine/') && document.readyState === 'complete'"; }
ok wait_until 10 confirm_page
like "$(cdp eval "document.querySelector('main').innerText")" '"id": 101' "the confirmation shows b's colliding row 101"
like "$(cdp eval "document.querySelector('main').innerText")" 'nothing was changed' "... from a dry run"
is "$(repl_val b "SELECT count(*) FROM users WHERE id = 101")" 1 "... and row 101 is still on b"
shot quarantine-confirm
cdp eval "[...document.querySelectorAll('button')].find(b => b.textContent.startsWith('Confirm')).click(); true" >/dev/null
gone() { [[ $(repl_val b "SELECT count(*) FROM users WHERE id = 101") == 0 ]]; }
ok wait_until 20 gone
back() { js_true "location.pathname === '/quarantine'"; }
ok wait_until 10 back
run_repctl kick ab --wait
settled() { [[ $(meta "SELECT count(*) FROM repctl.quarantine WHERE sync = 'ab' AND resolved_at IS NULL") == 0 ]] &&
	[[ $(repl_val b "SELECT count(*) FROM users WHERE id = 1") == 1 ]]; }
ok wait_until 30 settled

repl_no_daemon_san
done_testing
