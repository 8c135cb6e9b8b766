-- meta_003.sql: folders for the two-way file sync (version 3).
CREATE TABLE repctl.folder (
    name        text PRIMARY KEY CHECK (name ~ '^[A-Za-z_][A-Za-z0-9_.-]{0,62}$'),
    ignore      text NOT NULL DEFAULT '',
    status      text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'inactive', 'paused')),
    interval_s  integer CHECK (interval_s IS NULL OR interval_s > 0),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE repctl.folder_node (
    folder      text NOT NULL REFERENCES repctl.folder (name) ON DELETE CASCADE,
    node        text NOT NULL REFERENCES repctl.node (name),
    path        text NOT NULL CHECK (path LIKE '/%'),
    type        text NOT NULL DEFAULT 'send-receive'
                CHECK (type IN ('send-receive', 'send-only', 'receive-only')),
    ord         integer NOT NULL,
    PRIMARY KEY (folder, node)
);

-- One row per folder run (status).
CREATE TABLE repctl.folder_run (
    id          bigserial PRIMARY KEY,
    folder      text NOT NULL REFERENCES repctl.folder (name) ON DELETE CASCADE,
    started_at  timestamptz NOT NULL DEFAULT now(),
    ended_at    timestamptz,
    ok          boolean,
    files       bigint NOT NULL DEFAULT 0,
    bytes       bigint NOT NULL DEFAULT 0,
    wire_bytes  bigint NOT NULL DEFAULT 0,
    deleted     bigint NOT NULL DEFAULT 0,
    conflicts   bigint NOT NULL DEFAULT 0,
    error       text
);
CREATE INDEX folder_run_folder ON repctl.folder_run (folder, id DESC);
