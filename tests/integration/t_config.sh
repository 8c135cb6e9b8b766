#!/usr/bin/env bash
# tests/integration/t_config.sh - the configuration file and its environment.
#
# Proves:
#  - `repctl -c FILE config` (and --config=FILE) prints every key with its
#    effective value (file values, defaults, paths derived from state_dir)
#    and "configuration OK";
#  - an unknown key on line N is "FILE:N: unknown key" (also inside a group),
#    a syntax error is "FILE:N:", a wrong type and an out-of-range value are
#    named with FILE:N; each exits non-zero and prints nothing on stdout;
#  - REPCTL_CONFIG is used when -c is absent, and -c wins over it;
#  - -c (or REPCTL_CONFIG) naming a missing file is an error saying so;
#    `-c` without a file name is a usage error;
#  - REPCTL_META and REPCTL_STATE_DIR override the file's meta and state_dir,
#    for `config` and for real commands;
#  - `config` never prints the password of the meta conninfo;
#  - with only REPCTL_META and REPCTL_STATE_DIR (no file) install, add
#    database and list work; a file whose meta points at the metadata cluster
#    works without REPCTL_META (via -c and via REPCTL_CONFIG);
#  - help works even when the configuration file is broken.
# shellcheck disable=SC2119 # meta_snapshot, rc_nonzero: optional arguments
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/common.sh"
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/pg.sh"
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/fixtures.sh"

unset REPCTL_CONFIG REPCTL_META REPCTL_STATE_DIR REPCTL_NODE
cd "$TEST_TMP"
fx_closed_port
closed=$FX_CLOSED_PORT

# ---- a good file -------------------------------------------------------------------
cat >good.conf <<EOF
# repctl test configuration
meta = "host=127.0.0.1 port=$closed user=postgres dbname=postgres"
state_dir = "$TEST_TMP/st-file"
sync_interval = 42

retry = { min = 2; max = 120; };
ssh: { timeout = 7; };
EOF

run_repctl -c good.conf config
is "$RC" 0 "-c FILE config"
like "$OUT" '^# configuration file: good.conf$' "names the file it read"
meta_line=$(grep '^meta = ' <<<"$OUT" || true)
for kv in host=127.0.0.1 "port=$closed" user=postgres dbname=postgres; do
	like "$meta_line" "^meta = \".*\<$kv\>.*\"\$" "meta from the file has $kv"
done
like "$OUT" "^state_dir = \"$TEST_TMP/st-file\"\$" "state_dir from the file"
like "$OUT" '^sync_interval = 42$' "an integer from the file"
like "$OUT" '^retry.min = 2$' "a key inside a group"
like "$OUT" '^retry.max = 120$' "another key inside the group"
like "$OUT" '^ssh.timeout = 7$' "a group written with ':'"
like "$OUT" '^connect_timeout = 10$' "a default"
like "$OUT" '^log_syslog = false$' "a boolean default"
like "$OUT" "^secrets_file = \"$TEST_TMP/st-file/secrets\"\$" "secrets_file derived from state_dir"
like "$OUT" "^pid_file = \"$TEST_TMP/st-file/repctl.pid\"\$" "pid_file derived from state_dir"
like "$OUT" '^# configuration OK$' "says configuration OK"
for k in meta node state_dir log_file log_level log_syslog pid_file secrets_file sync_interval \
	connect_timeout retry.min retry.max circuit.failures circuit.reset clock.skew_warn_ms \
	clock.future_limit ssh.identity ssh.known_hosts ssh.timeout folders.scan_interval \
	folders.trash_days folders.ignore folders.bwlimit; do
	like "$OUT" "^${k//./\\.} = " "prints key $k"
done
is "$ERR" "" "nothing on stderr"
good_out=$OUT

run_repctl --config=good.conf config
is "$OUT" "$good_out" "--config=FILE is the same as -c FILE"

# ---- bad files -----------------------------------------------------------------------
cat >unknown.conf <<'EOF'
# line 1
meta = "dbname=x"

log_level = "debug"
bogus_key = 5
EOF
run_repctl -c unknown.conf config
rc_nonzero
like "$ERR" "^repctl: error: unknown.conf:5: unknown key 'bogus_key'" "unknown key: FILE:N: unknown key"
like "$ERR" "valid keys here: meta, node, state_dir" "unknown key: lists the valid keys"
is "$OUT" "" "unknown key: nothing on stdout"

cat >group.conf <<'EOF'
meta = "dbname=x"
ssh = {
  identity = "/x";
  nope = 1;
};
EOF
run_repctl -c group.conf config
rc_nonzero
like "$ERR" "group.conf:4: unknown key 'ssh.nope' in group 'ssh'; valid keys here: identity, known_hosts, timeout" \
	"unknown key in a group: FILE:N and the group's valid keys"

cat >syntax.conf <<'EOF'
meta = "dbname=x"
log_level = "info"
sync_interval = = 5
EOF
run_repctl -c syntax.conf config
rc_nonzero
like "$ERR" '^repctl: error: syntax.conf:3: ' "syntax error: FILE:N:"
is "$OUT" "" "syntax error: nothing on stdout"

printf 'meta = "dbname=x"\nsync_interval = "abc"\n' >type.conf
run_repctl -c type.conf config
rc_nonzero
like "$ERR" "type.conf:2: 'sync_interval' must be an integer" "wrong type: FILE:N and the expected type"

printf 'connect_timeout = 0\n' >range.conf
run_repctl -c range.conf config
rc_nonzero
like "$ERR" "range.conf:1: 'connect_timeout' is 0, out of range; use a value from 1 to 3600" \
	"out of range: FILE:N and the valid range"

printf 'log_level = "loud"\n' >level.conf
run_repctl -c level.conf config
rc_nonzero
like "$ERR" "log_level \"loud\" is not known; use error, warn, info or debug" "bad log_level: valid values"

# ---- REPCTL_CONFIG and -c --------------------------------------------------------------
REPCTL_CONFIG=good.conf run_repctl config
is "$RC" 0 "REPCTL_CONFIG is used when -c is absent"
is "$OUT" "$good_out" "... with the same result as -c"
REPCTL_CONFIG=unknown.conf run_repctl config
like "$ERR" "unknown.conf:5: unknown key" "REPCTL_CONFIG's file is really read"
REPCTL_CONFIG=unknown.conf run_repctl -c good.conf config
is "$RC" 0 "-c wins over REPCTL_CONFIG"
like "$OUT" '^# configuration file: good.conf$' "... and names the -c file"

run_repctl -c "$TEST_TMP/missing.conf" config
rc_nonzero
like "$ERR" "cannot open configuration file \"$TEST_TMP/missing.conf\": No such file or directory" \
	"-c missing file: says so"
like "$ERR" "pass an existing file with -c or REPCTL_CONFIG" "-c missing file: how to fix"
REPCTL_CONFIG=$TEST_TMP/missing.conf run_repctl config
rc_nonzero
like "$ERR" "cannot open configuration file \"$TEST_TMP/missing.conf\"" "REPCTL_CONFIG missing file: says so"
run_repctl config -c
is "$RC" 2 "-c after the command: usage error"
like "$ERR" "unknown option 'c' for 'config'" "... says so"
run_repctl -c
is "$RC" 2 "-c without a file name: usage error"
like "$ERR" "-c needs a file name" "... says so"

# help works whatever the configuration.
run_repctl -c unknown.conf help add database
is "$RC" 0 "help works with a broken configuration file"
REPCTL_CONFIG=syntax.conf run_repctl help
is "$RC" 0 "help works with a broken REPCTL_CONFIG"

# ---- environment overrides ---------------------------------------------------------------
REPCTL_META="dbname=from_env" REPCTL_STATE_DIR="$TEST_TMP/st-env" run_repctl -c good.conf config
is "$RC" 0 "config with REPCTL_META and REPCTL_STATE_DIR set"
like "$OUT" '^meta = "dbname=from_env"$' "REPCTL_META overrides meta from the file"
like "$OUT" "^state_dir = \"$TEST_TMP/st-env\"\$" "REPCTL_STATE_DIR overrides state_dir"
like "$OUT" "^secrets_file = \"$TEST_TMP/st-env/secrets\"\$" "... and the paths derived from it"
like "$OUT" '^sync_interval = 42$' "the rest still comes from the file"

# ---- no password in `config` -----------------------------------------------------------------
printf 'meta = "host=127.0.0.1 port=%s user=postgres password=Sekr1tPw dbname=postgres"\n' "$closed" >pw.conf
run_repctl -c pw.conf config
is "$RC" 0 "config with a password in meta"
lacks_str "$OUT$ERR" "Sekr1tPw" "config does not print the meta password"
like "$OUT" '^meta = ".*port=[0-9]+' "... but still shows the meta conninfo"
run_repctl -c pw.conf list databases
rc_nonzero
lacks_str "$OUT$ERR" "Sekr1tPw" "a metadata connection error does not print it either"

# ---- real commands -------------------------------------------------------------------------
pg_start META
fx_rails_db META app
PM=$(pg_port META)
meta_ci=$(pg_conninfo META postgres)

# Only the environment, no file.
fx_env META
if [[ -e /usr/local/etc/repctl.conf || -e /etc/repctl.conf ]]; then
	note "an installed repctl.conf exists; not asserting the no-file case of config"
else
	run_repctl config
	like "$OUT" '^# configuration file: \(none, defaults\)$' "without -c or REPCTL_CONFIG no file is read"
fi
fx_install
run_repctl add database a dbname=app host=127.0.0.1 port="$PM" user=postgres
is "$RC" 0 "env only: add database works"
run_repctl list databases
is "$RC" 0 "env only: list databases works"
like "$OUT" '^a +active ' "... and shows the node"

# A file pointing at the metadata cluster, no REPCTL_META.
cat >meta.conf <<EOF
meta = "$meta_ci"
state_dir = "$TEST_TMP/state"
EOF
unset REPCTL_META REPCTL_STATE_DIR
run_repctl -c meta.conf list databases
is "$RC" 0 "-c FILE with meta, no REPCTL_META: list databases works"
like "$OUT" '^a +active ' "... against the metadata cluster of the file"
REPCTL_CONFIG=meta.conf run_repctl list databases
is "$RC" 0 "REPCTL_CONFIG with meta, no REPCTL_META: works too"
like "$OUT" '^a +active ' "... and shows the node"
REPCTL_CONFIG=meta.conf run_repctl validate
is "$RC" 0 "validate with the file's meta"
like "$OUT" "^configuration meta.conf: OK" "validate names the configuration file"

# REPCTL_META wins for real commands too.
REPCTL_META="host=127.0.0.1 port=$closed user=postgres dbname=postgres" run_repctl -c meta.conf list databases
rc_nonzero
like "$ERR" "cannot connect to the metadata database .*port=$closed" \
	"REPCTL_META overrides the file's meta for real commands"
REPCTL_META=$meta_ci run_repctl -c good.conf list databases
is "$RC" 0 "REPCTL_META rescues a file with a wrong meta"
like "$OUT" '^a +active ' "... and reaches the metadata cluster"

done_testing
