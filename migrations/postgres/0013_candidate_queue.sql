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
    -- The epoch of the leader that queued it (the fence stamps it).
    epoch     BIGINT,
    UNIQUE (target, sha256)
);

-- Only the leader queues (a follower's upload goes to fleet_submissions):
-- a deposed leader's late insert is refused, so no row appears that the
-- leader in office did not answer for.
CREATE TRIGGER candidate_queue_fence BEFORE INSERT OR UPDATE ON candidate_queue
    FOR EACH ROW EXECUTE FUNCTION kaizen_fence();
