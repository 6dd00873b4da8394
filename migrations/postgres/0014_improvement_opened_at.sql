-- When an improvement was opened, by the database's clock. `created_at` is
-- the leader's clock; the guard that keeps a follower's submission from
-- being taken twice ("an improvement for it was opened since it was
-- submitted") compares with `fleet_submissions.at`, the database's, and
-- must compare times from one clock: a leader whose clock ran behind would
-- take a submission again (and prove its candidate twice), one whose clock
-- ran ahead would hide a later submission of the same bytes.
ALTER TABLE improvements ADD COLUMN opened_at BIGINT NOT NULL DEFAULT kaizen_now_ms();
