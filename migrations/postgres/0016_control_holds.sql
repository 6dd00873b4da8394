-- Who set each switch that holds the loop (pause, emergency stop, the
-- global switch off), and why: JSON `{"reason", "by_whom", "at"}`, NULL
-- while the switch is off. With two switches on, lifting one shows the
-- other's own reason rather than the lifting's. Switches on now take the
-- reason they were last given.
ALTER TABLE control_state ADD COLUMN pause_hold TEXT;
ALTER TABLE control_state ADD COLUMN stop_hold TEXT;
ALTER TABLE control_state ADD COLUMN disable_hold TEXT;
UPDATE control_state SET
    pause_hold = CASE WHEN paused != 0 THEN json_build_object('reason', reason, 'by_whom', by_whom, 'at', state_changed_at)::text END,
    stop_hold = CASE WHEN stopped != 0 THEN json_build_object('reason', reason, 'by_whom', by_whom, 'at', state_changed_at)::text END,
    disable_hold = CASE WHEN enabled = 0 THEN json_build_object('reason', reason, 'by_whom', by_whom, 'at', state_changed_at)::text END;
