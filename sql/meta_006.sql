-- meta_006.sql: positions remember the source server's incarnation (version 6).
--
-- A position is a snapshot of xids.  When a source loses committed
-- transactions (a crash with synchronous_commit = off, a failover to an
-- asynchronous standby, a restore), it hands the lost xids out again, and
-- transactions that reuse them would look "already seen".  source_epoch is
-- the source's postmaster start time when the position was taken: when it
-- has changed, the edge rescans the table's whole version store once (the
-- apply is idempotent: what the target already has is skipped).
ALTER TABLE repctl.position ADD COLUMN source_epoch text;
