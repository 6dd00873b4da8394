-- The share of a slot's calls its rollout gives a matched control of the
-- serving version (0 without one), so that every host of a fleet splits
-- its calls as the leader does (PostgreSQL's 0010 adds the fleet itself).
ALTER TABLE deployments ADD COLUMN control_percent REAL NOT NULL DEFAULT 0;
