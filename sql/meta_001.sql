-- meta_001.sql: the metadata schema, version 1 (repctl install).
--
-- Lives in the coordinator's own database.  Everything a user configures
-- (nodes, herds, syncs) and everything the coordinator records (runs,
-- conflicts) is here; passwords never are (see the secrets file).
-- Names are checked here as well as in the CLI, so a bad name can never be
-- stored whatever the client.

CREATE TABLE repctl.node (
    name            text PRIMARY KEY
                    CHECK (name ~ '^[A-Za-z_][A-Za-z0-9_.-]{0,62}$'),
    conninfo        text NOT NULL CHECK (conninfo !~* '(^|\s)password\s*='),
    has_secret      boolean NOT NULL DEFAULT false,
    ssh             text,
    agent           text,
    status          text NOT NULL DEFAULT 'active'
                    CHECK (status IN ('active', 'inactive')),
    server_version  integer,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE repctl.herd (
    name            text PRIMARY KEY
                    CHECK (name ~ '^[A-Za-z_][A-Za-z0-9_.-]{0,62}$'),
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- A table of a herd as registered on one node (Bucardo registers tables per
-- database: `add all tables --herd=H --db=N` is run once per node).  A sync
-- replicates a table among those of its nodes that registered it.
CREATE TABLE repctl.herd_table (
    herd            text NOT NULL REFERENCES repctl.herd (name) ON DELETE CASCADE,
    node            text NOT NULL REFERENCES repctl.node (name) ON DELETE CASCADE,
    schema_name     text NOT NULL,
    table_name      text NOT NULL,
    pk_columns      text[] NOT NULL CHECK (cardinality(pk_columns) > 0),
    conflict_column text,
    added_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (herd, node, schema_name, table_name)
);

CREATE TABLE repctl.sync (
    name            text PRIMARY KEY
                    CHECK (name ~ '^[A-Za-z_][A-Za-z0-9_.-]{0,62}$'),
    herd            text NOT NULL REFERENCES repctl.herd (name),
    strategy        text NOT NULL
                    CHECK (strategy IN ('latest', 'first', 'source', 'target', 'skip', 'abort')),
    conflict_column text NOT NULL DEFAULT 'updated_at',
    interval_s      integer CHECK (interval_s IS NULL OR interval_s > 0),
    onetimecopy     integer NOT NULL DEFAULT 0 CHECK (onetimecopy IN (0, 1, 2)),
    status          text NOT NULL DEFAULT 'active'
                    CHECK (status IN ('active', 'inactive', 'paused')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE repctl.sync_node (
    sync            text NOT NULL REFERENCES repctl.sync (name) ON DELETE CASCADE,
    node            text NOT NULL REFERENCES repctl.node (name),
    role            text NOT NULL CHECK (role IN ('source', 'target')),
    ord             integer NOT NULL,
    PRIMARY KEY (sync, node)
);

-- One row per sync run (status, Bucardo's columns).
CREATE TABLE repctl.run (
    id              bigserial PRIMARY KEY,
    sync            text NOT NULL REFERENCES repctl.sync (name) ON DELETE CASCADE,
    started_at      timestamptz NOT NULL DEFAULT now(),
    ended_at        timestamptz,
    ok              boolean,
    inserts         bigint NOT NULL DEFAULT 0,
    updates         bigint NOT NULL DEFAULT 0,
    deletes         bigint NOT NULL DEFAULT 0,
    conflicts       bigint NOT NULL DEFAULT 0,
    error           text
);
CREATE INDEX run_sync_started ON repctl.run (sync, started_at DESC);

-- Every conflict resolved, with both versions.
CREATE TABLE repctl.conflict (
    id              bigserial PRIMARY KEY,
    sync            text NOT NULL,
    schema_name     text NOT NULL,
    table_name      text NOT NULL,
    pk              jsonb NOT NULL,
    local_node      text NOT NULL,
    local_row       jsonb,
    remote_node     text NOT NULL,
    remote_row      jsonb,
    winner          text NOT NULL,
    rule            text NOT NULL,
    resolved_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX conflict_sync_at ON repctl.conflict (sync, resolved_at);
