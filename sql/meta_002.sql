-- meta_002.sql: engine state (version 2).
--
-- position: per directed edge of a sync (source -> target) and table, the
-- snapshot of the source at the last batch the target committed.  A shadow
-- row whose xid is visible now and was not visible in that snapshot belongs
-- to the next batch, so a transaction that commits late is never skipped.
-- Per table, so that a table paused by schema drift keeps its place while
-- the others move on, and catches up from there once the schemas match.
CREATE TABLE repctl.position (
    sync        text NOT NULL REFERENCES repctl.sync (name) ON DELETE CASCADE,
    source      text NOT NULL,
    target      text NOT NULL,
    schema_name text NOT NULL,
    table_name  text NOT NULL,
    snapshot    text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (sync, source, target, schema_name, table_name)
);

-- Per node: consecutive failures, circuit breaker, last contact, clock offset.
CREATE TABLE repctl.node_state (
    node               text PRIMARY KEY REFERENCES repctl.node (name) ON DELETE CASCADE,
    failures           integer NOT NULL DEFAULT 0,
    circuit_open_until timestamptz,
    last_contact       timestamptz,
    last_error         text,
    clock_offset_ms    double precision,
    updated_at         timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE repctl.run ADD COLUMN edges_ok integer NOT NULL DEFAULT 0,
                       ADD COLUMN edges_failed integer NOT NULL DEFAULT 0,
                       ADD COLUMN warning text;   -- tables paused (schema drift ...)
