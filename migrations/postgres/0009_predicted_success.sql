-- Predicted success (JSON: p, low, high, successes, failures): a finding's
-- over every source on its target and kind, an improvement's for its own
-- source, as the loop predicted it when the attempt began.
ALTER TABLE findings ADD COLUMN prediction TEXT;
ALTER TABLE improvements ADD COLUMN prediction TEXT;
