-- When the switches (enabled, paused, stopped) last changed, and so when
-- `reason` and `by_whom` were given (Unix ms). `updated_at` moves with
-- any change, a declared freeze's included, which has its own reason.
ALTER TABLE control_state ADD COLUMN state_changed_at INTEGER NOT NULL DEFAULT 0;
UPDATE control_state SET state_changed_at = updated_at;
