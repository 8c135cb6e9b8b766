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

-- Capture on the partitions of a partitioned table: the same statement
-- triggers on every partition (every level) that lacks them, so a write
-- addressed to a partition directly is captured like one through the
-- parent (statement triggers fire only on the table a statement names).
-- The rows a partition already holds when it gets the capture (written
-- before, or brought by ATTACH PARTITION) are recorded as this node's
-- changes, so they replicate too.  Returns how many partitions were given
-- the capture.
CREATE OR REPLACE FUNCTION repctl.capture_partitions(parent regclass, func text)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    p regclass;
    n integer := 0;
    cap record;
    keys text;
BEGIN
    SELECT c.shadow, c.self, c.pk_columns INTO cap FROM repctl.captured c
     WHERE pg_catalog.to_regclass(pg_catalog.format('%I.%I', c.schema_name, c.table_name)) = parent;
    FOR p IN SELECT t.relid FROM pg_catalog.pg_partition_tree(parent) t
              WHERE t.relid <> parent
                AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger g
                                 WHERE g.tgrelid = t.relid AND g.tgname = 'repctl_capture_ins')
    LOOP
        EXECUTE pg_catalog.format('CREATE TRIGGER repctl_capture_ins AFTER INSERT ON %s '
            'REFERENCING NEW TABLE AS repctl_new FOR EACH STATEMENT EXECUTE FUNCTION repctl.%I()', p, func);
        EXECUTE pg_catalog.format('CREATE TRIGGER repctl_capture_upd AFTER UPDATE ON %s '
            'REFERENCING OLD TABLE AS repctl_old NEW TABLE AS repctl_new '
            'FOR EACH STATEMENT EXECUTE FUNCTION repctl.%I()', p, func);
        EXECUTE pg_catalog.format('CREATE TRIGGER repctl_capture_del AFTER DELETE ON %s '
            'REFERENCING OLD TABLE AS repctl_old FOR EACH STATEMENT EXECUTE FUNCTION repctl.%I()', p, func);
        EXECUTE pg_catalog.format('CREATE TRIGGER repctl_capture_trunc BEFORE TRUNCATE ON %s '
            'FOR EACH STATEMENT EXECUTE FUNCTION repctl.%I()', p, func);
        EXECUTE pg_catalog.format('ALTER TABLE %s ENABLE ALWAYS TRIGGER repctl_capture_ins, '
            'ENABLE ALWAYS TRIGGER repctl_capture_upd, ENABLE ALWAYS TRIGGER repctl_capture_del, '
            'ENABLE ALWAYS TRIGGER repctl_capture_trunc', p);
        IF cap.shadow IS NOT NULL THEN
            SELECT pg_catalog.string_agg(pg_catalog.quote_ident(k), ', ') INTO keys
              FROM pg_catalog.unnest(cap.pk_columns) k;
            EXECUTE pg_catalog.format('INSERT INTO repctl.%I AS s (%s, repctl_deleted, repctl_vv, '
                'repctl_txid, repctl_origin, repctl_changed_at) SELECT %s, false, '
                'pg_catalog.jsonb_build_object(%L, (extract(epoch FROM pg_catalog.clock_timestamp()) '
                '* 1000000)::bigint), pg_catalog.pg_current_xact_id(), NULL, pg_catalog.clock_timestamp() '
                'FROM %s ON CONFLICT (%s) DO UPDATE SET repctl_vv = s.repctl_vv || '
                'pg_catalog.jsonb_build_object(%L, GREATEST(coalesce((s.repctl_vv ->> %L)::bigint, 0) + 1, '
                '(extract(epoch FROM pg_catalog.clock_timestamp()) * 1000000)::bigint)), '
                'repctl_txid = EXCLUDED.repctl_txid, repctl_origin = NULL, repctl_dot = NULL, '
                'repctl_changed_at = EXCLUDED.repctl_changed_at, repctl_deleted = false '
                'WHERE s.repctl_deleted',
                cap.shadow, keys, keys, cap.self, p, keys, cap.self, cap.self);
        END IF;
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;

-- Event trigger function: a partition created or attached later under a
-- captured partitioned table gets the capture at once.  Installed as an
-- event trigger only when the replication role is a superuser (otherwise
-- every run installs what is missing).  Never makes the user's DDL fail.
CREATE OR REPLACE FUNCTION repctl.capture_new_partitions() RETURNS event_trigger
LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT DISTINCT c.schema_name, c.table_name, c.shadow
               FROM pg_catalog.pg_event_trigger_ddl_commands() d
               CROSS JOIN LATERAL pg_catalog.pg_partition_ancestors(d.objid) a
               JOIN repctl.captured c
                 ON pg_catalog.to_regclass(pg_catalog.format('%I.%I', c.schema_name, c.table_name)) = a.relid
              WHERE d.object_type = 'table'
    LOOP
        PERFORM repctl.capture_partitions(
            pg_catalog.format('%I.%I', r.schema_name, r.table_name)::regclass,
            'cap_' || pg_catalog.substr(r.shadow, 3));
    END LOOP;
EXCEPTION WHEN OTHERS THEN
    RAISE WARNING 'repctl: capture of a new partition failed: %', SQLERRM
        USING HINT = 'repctl installs it at the next run of a sync of that table';
END
$$;

-- The rows this transaction changed as this node's own changes (capture,
-- origin NULL) since a moment: what a cascade carried out for a foreign
-- key touched, at every depth, for the conflict log.
CREATE OR REPLACE FUNCTION repctl.local_changes_since(since timestamptz)
RETURNS TABLE (schema_name text, table_name text, pk jsonb, deleted boolean)
LANGUAGE plpgsql AS $$
DECLARE
    c record;
    args text;
BEGIN
    FOR c IN SELECT x.schema_name AS s, x.table_name AS t, x.shadow AS sh, x.pk_columns AS k
               FROM repctl.captured x ORDER BY 1, 2
    LOOP
        SELECT pg_catalog.string_agg(pg_catalog.format('%L, s.%I', k, k), ', ') INTO args
          FROM pg_catalog.unnest(c.k) k;
        RETURN QUERY EXECUTE pg_catalog.format(
            'SELECT %L::text, %L::text, pg_catalog.jsonb_build_object(%s), s.repctl_deleted '
            'FROM repctl.%I s WHERE s.repctl_txid = pg_catalog.pg_current_xact_id() '
            'AND s.repctl_origin IS NULL AND s.repctl_changed_at >= $1', c.s, c.t, args, c.sh)
            USING since;
    END LOOP;
END
$$;
