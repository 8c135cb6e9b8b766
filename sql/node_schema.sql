-- node_schema.sql: the schema repctl on every node (installed by add table /
-- add all tables; idempotent).
--
-- repctl.captured  one row per captured table: its shadow table and key.
-- repctl.s_<oid>   (created per table by capture.c) the shadow table: one
--                  row per primary key ever changed since capture was
--                  installed, with its version vector, the change time at
--                  the origin, the xid of the last writer and a tombstone
--                  flag.  It is at once the version store (conflicts are
--                  decided by causality) and the change log (a batch is the
--                  shadow rows whose xid became visible since the previous
--                  run), compacted per key by construction.
CREATE SCHEMA IF NOT EXISTS repctl;

CREATE TABLE IF NOT EXISTS repctl.captured (
    schema_name  text NOT NULL,
    table_name   text NOT NULL,
    shadow       text NOT NULL UNIQUE,
    pk_columns   text[] NOT NULL,
    self         text NOT NULL,
    installed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (schema_name, table_name)
);

-- Compare two version vectors {node: counter}: 0 equal, 1 a dominates,
-- -1 b dominates, 2 concurrent (a conflict).  Mirrors vv_compare() in vv.c.
CREATE OR REPLACE FUNCTION repctl.vv_cmp(a jsonb, b jsonb) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN ge AND le THEN 0 WHEN ge THEN 1 WHEN le THEN -1 ELSE 2 END
    FROM (SELECT coalesce(bool_and(coalesce((a ->> k)::bigint, 0) >= coalesce((b ->> k)::bigint, 0)), true) AS ge,
                 coalesce(bool_and(coalesce((a ->> k)::bigint, 0) <= coalesce((b ->> k)::bigint, 0)), true) AS le
          FROM (SELECT jsonb_object_keys(coalesce(a, '{}')) AS k
                UNION SELECT jsonb_object_keys(coalesce(b, '{}'))) keys) x
$$;

-- Element-wise maximum of two version vectors.  Mirrors vv_merge() in vv.c.
CREATE OR REPLACE FUNCTION repctl.vv_merge(a jsonb, b jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(jsonb_object_agg(k, greatest(coalesce((a ->> k)::bigint, 0),
                                                 coalesce((b ->> k)::bigint, 0))), '{}'::jsonb)
    FROM (SELECT jsonb_object_keys(coalesce(a, '{}')) AS k
          UNION SELECT jsonb_object_keys(coalesce(b, '{}'))) keys
$$;
