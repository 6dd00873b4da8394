-- The bake's holdback in the desired state: after a promotion, the share
-- of the slot's calls that stays on the previous version (0 outside a
-- bake), so that every host of a fleet holds back as the leader does.
ALTER TABLE deployments ADD COLUMN holdback_percent REAL NOT NULL DEFAULT 0;

-- Aggregate checkpoints by the host that made them (PostgreSQL fleets
-- share one table; a lone host writes its own id, or '' without a fleet).
-- SQLite cannot change a primary key in place: the table is rebuilt.
CREATE TABLE aggregates_by_host (
    host         TEXT NOT NULL DEFAULT '',
    target       TEXT NOT NULL,
    version      TEXT NOT NULL,
    bucket_start INTEGER NOT NULL,
    bucket       BLOB NOT NULL,
    -- When the row was last written (PostgreSQL's clock; unused here).
    written_at   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (host, target, version, bucket_start)
);
INSERT INTO aggregates_by_host (host, target, version, bucket_start, bucket)
    SELECT '', target, version, bucket_start, bucket FROM aggregates;
DROP TABLE aggregates;
ALTER TABLE aggregates_by_host RENAME TO aggregates;
CREATE INDEX aggregates_bucket_start ON aggregates (bucket_start);
CREATE INDEX aggregates_host_bucket ON aggregates (host, bucket_start);
CREATE INDEX aggregates_written_at ON aggregates (written_at);
