-- meta_002.sql: engine state (version 2).
--
-- position: per directed edge of a sync (source -> target), the snapshot of
-- the source at the last batch the target committed.  A shadow row whose
-- xid is visible now and was not visible in that snapshot belongs to the
-- next batch, so a transaction that commits late is never skipped.
CREATE TABLE repctl.position (
    sync        text NOT NULL REFERENCES repctl.sync (name) ON DELETE CASCADE,
    source      text NOT NULL,
    target      text NOT NULL,
    snapshot    text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (sync, source, target)
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
                       ADD COLUMN edges_failed integer NOT NULL DEFAULT 0;
