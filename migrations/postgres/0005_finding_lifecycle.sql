-- Findings have a lifecycle: the unit version a finding is about, the
-- earlier occurrence it recurs after, why it stands where it is (how it was
-- resolved, who acknowledged, snoozed or closed it), the cycles in a row
-- its detector stopped reporting it, until when it is snoozed, when its
-- state last changed, and why the loop made no attempt on it last cycle.
ALTER TABLE findings ADD COLUMN version TEXT;
ALTER TABLE findings ADD COLUMN previous BIGINT;
ALTER TABLE findings ADD COLUMN reason TEXT NOT NULL DEFAULT '';
ALTER TABLE findings ADD COLUMN missed BIGINT NOT NULL DEFAULT 0;
ALTER TABLE findings ADD COLUMN snoozed_until BIGINT;
ALTER TABLE findings ADD COLUMN changed_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE findings ADD COLUMN inaction TEXT;
UPDATE findings SET changed_at = last_seen;
-- An operator's close was never written as 'dismissed'; the state is 'closed'.
UPDATE findings SET status = 'closed' WHERE status = 'dismissed';
-- The occurrences of one finding (target, kind), newest first.
CREATE INDEX findings_target_kind_id ON findings (target, kind, id);
