# shellcheck shell=bash
# tests/integration/lib/fixtures.sh - shared fixtures of the repctl CLI
# tests.  Source after common.sh and pg.sh.
#
#   fx_env META                 export REPCTL_META (conninfo of cluster META,
#                               dbname=postgres) and REPCTL_STATE_DIR
#                               ($TEST_TMP/state); unset REPCTL_CONFIG and
#                               REPCTL_NODE, so no configuration file is used
#   fx_install                  repctl install, asserted to succeed
#   fx_rails_db CLUSTER DB      create database DB on CLUSTER holding a small
#                               Rails-like schema (see FX_* below)
#   fx_add_node NAME CLUSTER DB repctl add database NAME for CLUSTER/DB
#                               (separate keys), asserted to succeed
#   fx_closed_port              set FX_CLOSED_PORT to a 127.0.0.1 port nothing
#                               listens on (its harness port lock is held until
#                               the test ends; call it directly, not in $(...))
#   meta_snapshot [CLUSTER [DB]]  every row of every repctl.* table of the
#                               metadata database, ordered, plus a checksum
#                               of the secrets file: compare before/after a
#                               refused command with `is` to prove that it
#                               changed nothing
#   refused ARGS...             run_repctl ARGS, assert a non-zero exit and
#                               that meta_snapshot did not change; the caller
#                               then checks $ERR for the message
#   rc_nonzero [MSG]            assert the last run_repctl exited non-zero
#   json_ok TEXT                exit 0 when TEXT is valid JSON (python3)
#   json_eval TEXT EXPR         print python EXPR evaluated with d = json of TEXT
#   has_str TEXT STR MSG        assert TEXT contains STR (fixed string)
#   lacks_str TEXT STR MSG      assert TEXT does not contain STR (fixed string)
#
# run_repctl is wrapped: any AddressSanitizer / LeakSanitizer / UBSan report
# on repctl's stderr is a failed check of its own (for REPCTL_BIN pointing at
# a `make SAN=1` build).
#
# The Rails-like schema (what a small Rails app's database looks like):
#   public.songs                 id bigint PK, title, updated_at timestamptz
#   public.albums                id uuid PK default gen_random_uuid()
#   public.schema_migrations     version varchar PK
#   public.ar_internal_metadata  key varchar PK
#   public.play_log              no primary key
#   public."Weird ""name"""      composite key (a, b)
#   public.song_titles           a view
#   archive.old_songs            a second schema

# Variables set here are for the tests; functions take optional arguments.
# shellcheck disable=SC2034,SC2119,SC2120

if [[ -n ${_REPCTL_FIXTURES_SH:-} ]]; then
	return 0
fi
_REPCTL_FIXTURES_SH=1

if [[ -z ${_REPCTL_PG_SH:-} ]]; then
	echo "fixtures.sh: source common.sh and pg.sh first" >&2
	exit 2
fi

# Tables with a primary key, as repctl names them (schema.table, quoted by
# format('%I.%I')), sorted as `list tables` sorts them (schema, table).
FX_PK_TABLES=(
	archive.old_songs
	'public."Weird ""name"""'
	public.albums
	public.ar_internal_metadata
	public.schema_migrations
	public.songs
)
FX_NOPK_TABLE=public.play_log
FX_VIEW=public.song_titles

# shellcheck disable=SC2016 # $$ is SQL dollar quoting
FX_SCHEMA_SQL='
CREATE TABLE public.songs (
    id         bigint PRIMARY KEY,
    title      text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE public.albums (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name       text,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE public.schema_migrations (version varchar PRIMARY KEY);
CREATE TABLE public.ar_internal_metadata (
    key        varchar PRIMARY KEY,
    value      varchar,
    created_at timestamp(6) NOT NULL,
    updated_at timestamp(6) NOT NULL
);
CREATE TABLE public.play_log (song_id bigint, played_at timestamptz);
CREATE TABLE public."Weird ""name""" (
    a          integer,
    b          text,
    note       text,
    updated_at timestamptz,
    PRIMARY KEY (a, b)
);
CREATE VIEW public.song_titles AS SELECT id, title FROM public.songs;
CREATE SCHEMA archive;
CREATE TABLE archive.old_songs (
    id         bigint PRIMARY KEY,
    title      text,
    updated_at timestamptz
);
INSERT INTO public.songs (id, title) VALUES (1, $$Blue in Green$$), (2, $$So What$$);
INSERT INTO public.schema_migrations VALUES ($$20240101000000$$);
INSERT INTO public.ar_internal_metadata VALUES ($$environment$$, $$production$$, now(), now());
'

fx_env() {
	local meta=$1
	REPCTL_META=$(pg_conninfo "$meta" postgres)
	REPCTL_STATE_DIR=$TEST_TMP/state
	export REPCTL_META REPCTL_STATE_DIR
	unset REPCTL_CONFIG REPCTL_NODE
	FX_META_CLUSTER=$meta
}

fx_install() {
	run_repctl install
	is "$RC" 0 "repctl install succeeds"
	if [[ $RC != 0 ]]; then
		diag "install stderr: $ERR"
	fi
}

fx_rails_db() {
	local cluster=$1 db=$2
	pg_createdb "$cluster" "$db"
	pg_psql "$cluster" "$db" <<<"$FX_SCHEMA_SQL"
}

fx_add_node() {
	local name=$1 cluster=$2 db=$3
	run_repctl add database "$name" dbname="$db" host=127.0.0.1 \
		port="$(pg_port "$cluster")" user=postgres
	is "$RC" 0 "add database $name ($cluster/$db)"
	if [[ $RC != 0 ]]; then
		diag "add database $name stderr: $ERR"
	fi
}

meta_snapshot() {
	local meta=${1:-$FX_META_CLUSTER} db=${2:-postgres} secrets=$REPCTL_STATE_DIR/secrets
	pg_psql "$meta" "$db" <<-'SQL'
		SELECT 'schema repctl: ' || CASE WHEN to_regnamespace('repctl') IS NULL
		    THEN 'absent' ELSE 'present' END;
		SELECT format('SELECT %L || '': '' || t::text FROM repctl.%I t ORDER BY t::text',
		              c.relname, c.relname)
		  FROM pg_catalog.pg_class c
		  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		 WHERE n.nspname = 'repctl' AND c.relkind IN ('r', 'p')
		 ORDER BY c.relname \gexec
	SQL
	if [[ -e $secrets ]]; then
		printf 'secrets file: %s\n' "$(sha256sum <"$secrets")"
	else
		printf 'secrets file: absent\n'
	fi
}

fx_closed_port() {
	_pg_pick_port
	cleanup_push rm -rf -- "$PG_PORT_LOCK_DIR/$_PG_NEWPORT"
	FX_CLOSED_PORT=$_PG_NEWPORT
}

has_str() {
	if [[ $1 == *"$2"* ]]; then
		_t_result 1 "$3" "$(_t_where 1)"
	else
		_t_result 0 "$3" "$(_t_where 1)" "     got: '$1'"$'\n'"expected to contain: '$2'"
	fi
}

lacks_str() {
	if [[ $1 != *"$2"* ]]; then
		_t_result 1 "$3" "$(_t_where 1)"
	else
		_t_result 0 "$3" "$(_t_where 1)" "     got: '$1'"$'\n'"expected NOT to contain: '$2'"
	fi
}

# Wrap the harness's run_repctl with a sanitizer check.
eval "_fx_run_repctl_plain() $(declare -f run_repctl | tail -n +2)"
run_repctl() {
	_fx_run_repctl_plain "$@"
	if [[ $ERR == *AddressSanitizer* || $ERR == *LeakSanitizer* || $ERR == *"runtime error:"* ]]; then
		_t_result 0 "no sanitizer report from repctl $(_t_cmd_str "$@")" "$(_t_where 1)" "$ERR"
	fi
	return 0
}

rc_nonzero() {
	if ((RC != 0)); then
		_t_result 1 "${1:-exits non-zero} (exit $RC)" "$(_t_where 1)"
	else
		_t_result 0 "${1:-exits non-zero}" "$(_t_where 1)" "exited 0; stdout: $OUT"$'\n'"stderr: $ERR"
	fi
}

refused() {
	local before where
	where=$(_t_where 1)
	before=$(meta_snapshot)
	run_repctl "$@"
	if ((RC != 0)); then
		_t_result 1 "refused (exit $RC): $(_t_cmd_str "$@")" "$where"
	else
		_t_result 0 "refused: $(_t_cmd_str "$@")" "$where" \
			"exited 0; stdout: $OUT"$'\n'"stderr: $ERR"
	fi
	if [[ $(meta_snapshot) == "$before" ]]; then
		_t_result 1 "metadata untouched by: $(_t_cmd_str "$@")" "$where"
	else
		_t_result 0 "metadata untouched by: $(_t_cmd_str "$@")" "$where" \
			"$(diff <(printf '%s\n' "$before") <(meta_snapshot) || true)"
	fi
}

json_ok() {
	python3 -c 'import json,sys; json.load(sys.stdin)' <<<"$1"
}

json_eval() {
	python3 -c 'import json,sys; d = json.load(sys.stdin); print(eval(sys.argv[1]))' "$2" <<<"$1"
}
