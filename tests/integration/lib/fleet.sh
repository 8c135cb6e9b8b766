# shellcheck shell=bash
# tests/integration/lib/fleet.sh - shared helpers of the fleet hardening
# tests (t_fleet_*.sh).  Source after common.sh, pg.sh, fixtures.sh and
# repl.sh.
#
#   FLEET_SCHEMA_SQL      a Rails-like schema whose keys come from sequences:
#                           users     bigserial key
#                           events    integer GENERATED ALWAYS AS IDENTITY key
#                           notes     bigint key, DEFAULT nextval('note_ids')
#                           tokens    uuid key (gen_random_uuid(): no hazard)
#                           settings  text key, no default (no hazard)
#                           parents / children   FK parent / child (serial keys)
#   fleet_schema          make repl_setup / repl_add_node use FLEET_SCHEMA_SQL
#   fleet_count NODE TABLE   row count
#   fleet_parallel CMD... run each CMD (shell code, eval'd in a subshell, so
#                         functions work) in the background at once and wait
#                         for all; 1 when any failed

# shellcheck disable=SC2034 # variables are for the tests

if [[ -n ${_REPCTL_FLEET_SH:-} ]]; then
	return 0
fi
_REPCTL_FLEET_SH=1

if [[ -z ${_REPCTL_REPL_SH:-} ]]; then
	echo "fleet.sh: source common.sh, pg.sh, fixtures.sh and repl.sh first" >&2
	exit 2
fi

FLEET_SCHEMA_SQL=$(
	cat <<'SQL'
CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE TABLE public.users (
    id         bigserial PRIMARY KEY,
    email      text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE public.events (
    id         integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       text,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE SEQUENCE public.note_ids;
CREATE TABLE public.notes (
    id         bigint PRIMARY KEY DEFAULT nextval('public.note_ids'),
    body       text,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE public.tokens (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner      text,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE public.settings (
    key        text PRIMARY KEY,
    value      text,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE public.parents (
    id         serial PRIMARY KEY,
    name       text,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE public.children (
    id         serial PRIMARY KEY,
    parent_id  integer NOT NULL REFERENCES public.parents (id),
    name       text,
    updated_at timestamptz NOT NULL DEFAULT now()
);
SQL
)

fleet_schema() {
	REPL_SCHEMA_SQL=$FLEET_SCHEMA_SQL
}

fleet_count() {
	repl_val "$1" "SELECT count(*) FROM $2"
}

fleet_parallel() {
	local pids=() c pid rc=0
	for c in "$@"; do
		(eval "$c") &
		pids+=("$!")
	done
	for pid in "${pids[@]}"; do
		wait "$pid" || rc=1
	done
	return "$rc"
}
