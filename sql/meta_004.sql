-- meta_004.sql: quarantined rows (version 4).
--
-- A row whose apply a target refuses for a reason of its own data (another
-- unique index, a check constraint) is set aside here with the reason,
-- retried on every later run of its edge, and shown by status and
-- conflicts; every other row keeps flowing.  `repctl conflicts resolve`
-- settles one by keeping either version.
CREATE TABLE repctl.quarantine (
    id           bigserial PRIMARY KEY,
    sync         text NOT NULL REFERENCES repctl.sync (name) ON DELETE CASCADE,
    source       text NOT NULL,
    target       text NOT NULL,
    schema_name  text NOT NULL,
    table_name   text NOT NULL,
    pk           jsonb NOT NULL,
    row_data     jsonb,
    reason       text NOT NULL,
    constraint_name text,
    attempts     integer NOT NULL DEFAULT 1,
    first_at     timestamptz NOT NULL DEFAULT now(),
    last_at      timestamptz NOT NULL DEFAULT now(),
    resolved_at  timestamptz,
    resolution   text,
    UNIQUE (sync, source, target, schema_name, table_name, pk)
);
