-- The bake's holdback in the desired state: after a promotion, the share
-- of the slot's calls that stays on the previous version (0 outside a
-- bake), so that every host holds back as the leader does and the bake is
-- judged on the whole fleet's calls.
ALTER TABLE deployments ADD COLUMN holdback_percent DOUBLE PRECISION NOT NULL DEFAULT 0;

-- Aggregate checkpoints by the host that made them: each host restores its
-- own, and the leader's detectors read every other host's beside its own.
-- Rows written before hosts were named keep host '' and age out (no host
-- of a fleet could tell its own among them). `written_at` (the
-- database's clock) lets the leader read only what changed since its last
-- read.
ALTER TABLE aggregates ADD COLUMN host TEXT NOT NULL DEFAULT '';
ALTER TABLE aggregates ADD COLUMN written_at BIGINT NOT NULL DEFAULT kaizen_now_ms();
ALTER TABLE aggregates DROP CONSTRAINT aggregates_pkey;
ALTER TABLE aggregates ADD PRIMARY KEY (host, target, version, bucket_start);
CREATE INDEX aggregates_host_bucket ON aggregates (host, bucket_start);
CREATE INDEX aggregates_written_at ON aggregates (written_at);

-- The loop's own records are the leader's writes too: findings (the loop
-- opens, updates and resolves them; operators' actions on them go to the
-- leader), cycle reports and the learned priorities are fenced and stamped
-- like the deployments.
ALTER TABLE findings ADD COLUMN epoch BIGINT;
ALTER TABLE cycle_reports ADD COLUMN epoch BIGINT;
ALTER TABLE plugin_priorities ADD COLUMN epoch BIGINT;
CREATE TRIGGER findings_fence BEFORE INSERT OR UPDATE ON findings
    FOR EACH ROW EXECUTE FUNCTION kaizen_fence();
CREATE TRIGGER cycle_reports_fence BEFORE INSERT OR UPDATE ON cycle_reports
    FOR EACH ROW EXECUTE FUNCTION kaizen_fence();
CREATE TRIGGER plugin_priorities_fence BEFORE INSERT OR UPDATE ON plugin_priorities
    FOR EACH ROW EXECUTE FUNCTION kaizen_fence();

-- A recovery strategy's rollback requests made on a follower (one per
-- target and round of following), for the leader, which alone rolls back
-- and deletes them as it takes them. Notified like the submissions.
CREATE TABLE fleet_rollback_requests (
    id       BIGSERIAL PRIMARY KEY,
    host     TEXT NOT NULL,
    target   TEXT NOT NULL,
    reason   TEXT NOT NULL,
    at       BIGINT NOT NULL DEFAULT kaizen_now_ms()
);
CREATE TRIGGER fleet_rollback_requests_notify AFTER INSERT ON fleet_rollback_requests
    FOR EACH ROW EXECUTE FUNCTION kaizen_notify_submitted();

-- What each host's slots serve, as it last reported (a JSON object, slot
-- to a line such as `2.0.0 (2.1.0 at 10%)`), for operators.
ALTER TABLE fleet_hosts ADD COLUMN serving TEXT NOT NULL DEFAULT '{}';
