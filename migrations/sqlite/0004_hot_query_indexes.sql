-- An index for every query the loop and the host run on a hot table, so
-- none of them scans a table that grows with traffic (the replay sample
-- query took 1-2 s under load with only (target, started_at) to use).
-- Newest executions of a target.
CREATE INDEX executions_target_id ON executions (target, id);
-- Newest executions of a target that carry a request: replay samples.
CREATE INDEX executions_replayable ON executions (target, id) WHERE request IS NOT NULL;
-- Metric points since a time, in order; retention by time.
CREATE INDEX metrics_at ON metrics (at, id);
-- Aggregate buckets since a time (start-up); retention by time.
CREATE INDEX aggregates_bucket_start ON aggregates (bucket_start);
-- Newest recovery actions of a target.
CREATE INDEX recovery_log_target_id ON recovery_log (target, id);
-- Newest audit events of a target.
CREATE INDEX audit_events_target_id ON audit_events (target, id);
