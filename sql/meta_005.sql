-- meta_005.sql: partitioned key sequences (version 5).
--
-- `repctl partition sequences SYNC` makes every sequence that fills a
-- primary key hand out, on each node, only the values v with
-- v = residue (mod step): INCREMENT BY step, START WITH and the next value
-- on the node's residue.  One row per node and sequence records it, so a
-- node keeps its residue when the command runs again (for another sync, or
-- after `add database` of a new node, which then gets a residue no other
-- node has).  The step is the same for the whole fleet.  Removing a node
-- frees its residue.
CREATE TABLE repctl.seq_partition (
    node          text NOT NULL REFERENCES repctl.node (name) ON DELETE CASCADE,
    schema_name   text NOT NULL,
    sequence_name text NOT NULL,
    step          integer NOT NULL CHECK (step >= 2),
    residue       integer NOT NULL CHECK (residue >= 1 AND residue <= step),
    next_value    bigint NOT NULL,
    set_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (node, schema_name, sequence_name),
    UNIQUE (schema_name, sequence_name, residue)
);
