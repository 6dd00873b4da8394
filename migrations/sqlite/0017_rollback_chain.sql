-- Every version a slot's rollback can go back to, newest first, as a JSON
-- array of module ids: the slot's in-memory history, kept so that a
-- restart restores every level of rollback and not just `previous_sha`.
-- NULL for rows written before; those restore `previous_sha` alone.
ALTER TABLE deployments ADD COLUMN rollback_chain TEXT;
