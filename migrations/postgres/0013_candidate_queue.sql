-- Candidates waiting for the loop, per target in the order they came: the
-- queue the API, the watch folder and the fleet's uploads fill. On disk, so
-- that a candidate whose upload was answered "candidate" outlives a restart
-- (and, in a fleet, the leader that took it); a row leaves in the
-- transaction that opens the improvement proving it.
CREATE TABLE candidate_queue (
    id        BIGSERIAL PRIMARY KEY,
    target    TEXT NOT NULL,
    sha256    TEXT NOT NULL,
    source    TEXT NOT NULL,
    queued_at BIGINT NOT NULL,
    UNIQUE (target, sha256)
);
