-- A change freeze an operator declares (`kaizen freeze`): until when (Unix
-- ms), and why. It lapses by itself; NULL means none.
ALTER TABLE control_state ADD COLUMN freeze_until INTEGER;
ALTER TABLE control_state ADD COLUMN freeze_reason TEXT;
