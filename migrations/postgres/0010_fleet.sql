-- A fleet: several hosts on one PostgreSQL database (SQLite has no fleet).
--
-- Times here are the database's clock (kaizen_now_ms), never a host's: a
-- lease expires at one instant for every host, whatever their clocks say.

CREATE FUNCTION kaizen_now_ms() RETURNS BIGINT AS $$
    SELECT (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT
$$ LANGUAGE SQL VOLATILE;

-- Every host that joined, by its stable id; `instance` is new at each
-- process start, so that two live processes cannot share one id.
CREATE TABLE fleet_hosts (
    id               TEXT PRIMARY KEY,
    instance         TEXT NOT NULL,
    address          TEXT NOT NULL DEFAULT '',
    kaizen_version   TEXT NOT NULL,
    started_at       BIGINT NOT NULL,
    heartbeat_at     BIGINT NOT NULL,
    -- The revision of the desired state this host serves.
    applied_revision BIGINT NOT NULL DEFAULT 0
);

-- The desired state's revision: every write to `deployments` takes the
-- next one, and its commit notifies `kaizen_desired` with it.
CREATE SEQUENCE fleet_revision;

-- The loop's leader: one row, a lease with an expiry, and the fencing epoch
-- that grows by one with every new term.
CREATE TABLE fleet_lease (
    id          SMALLINT PRIMARY KEY CHECK (id = 1),
    holder      TEXT NOT NULL,
    instance    TEXT NOT NULL,
    epoch       BIGINT NOT NULL,
    acquired_at BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);

-- Module and config bytes by sha256, so that a host that never saw an
-- upload restores it (verified by its hash) into its own data directory.
CREATE TABLE blobs (
    sha256   TEXT NOT NULL,
    kind     TEXT NOT NULL,
    bytes    BYTEA NOT NULL,
    added_at BIGINT NOT NULL,
    PRIMARY KEY (kind, sha256)
);

-- The fence. Each host's connections name it (application_name
-- `kaizen/HOST`); once a lease exists, a write to what serves and to the
-- rollouts is refused unless it comes from the holder of an unexpired
-- lease, and it is stamped with the holder's epoch. The lease row is read
-- FOR SHARE, so a takeover waits for the writes of the term it ends: no
-- write of a deposed leader commits after its successor's first.
CREATE FUNCTION kaizen_fence() RETURNS trigger AS $$
DECLARE
    l fleet_lease%ROWTYPE;
    me TEXT := current_setting('application_name', true);
BEGIN
    IF TG_TABLE_NAME = 'deployments' THEN
        -- Revisions in commit order: a sequence alone hands them out at
        -- insert, and a follower that applied a later one first would
        -- never see the earlier commit as new.
        PERFORM pg_advisory_xact_lock(hashtext('kaizen.fleet_revision'));
        NEW.revision := nextval('fleet_revision');
    END IF;
    SELECT * INTO l FROM fleet_lease WHERE id = 1 FOR SHARE;
    IF NOT FOUND THEN
        RETURN NEW;
    END IF;
    IF me IS DISTINCT FROM 'kaizen/' || l.holder || '/' || l.instance OR l.expires_at <= kaizen_now_ms() THEN
        RAISE EXCEPTION 'fenced: % does not hold the lease of epoch % (held by %, expires %)',
            coalesce(me, 'an unnamed session'), l.epoch, l.holder, l.expires_at
            USING ERRCODE = 'KZFEN';
    END IF;
    NEW.epoch := l.epoch;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

ALTER TABLE deployments ADD COLUMN epoch BIGINT;
ALTER TABLE deployments ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;
-- The share of the slot's calls its rollout gives a matched control of the
-- serving version (0 without one), so that every host splits as the leader does.
ALTER TABLE deployments ADD COLUMN control_percent DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE deployment_history ADD COLUMN epoch BIGINT;
ALTER TABLE improvements ADD COLUMN epoch BIGINT;

CREATE TRIGGER deployments_fence BEFORE INSERT OR UPDATE ON deployments
    FOR EACH ROW EXECUTE FUNCTION kaizen_fence();
CREATE TRIGGER deployment_history_fence BEFORE INSERT OR UPDATE ON deployment_history
    FOR EACH ROW EXECUTE FUNCTION kaizen_fence();
CREATE TRIGGER improvements_fence BEFORE INSERT OR UPDATE ON improvements
    FOR EACH ROW EXECUTE FUNCTION kaizen_fence();

-- Every host applies the desired state on these notifications (and polls
-- as a backstop); an emergency stop on any host reaches the others the same way.
CREATE FUNCTION kaizen_notify_desired() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('kaizen_desired', NEW.revision::TEXT);
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE FUNCTION kaizen_notify_control() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('kaizen_control', NEW.updated_at::TEXT);
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER deployments_notify AFTER INSERT OR UPDATE ON deployments
    FOR EACH ROW EXECUTE FUNCTION kaizen_notify_desired();
CREATE TRIGGER control_state_notify AFTER UPDATE ON control_state
    FOR EACH ROW EXECUTE FUNCTION kaizen_notify_control();

-- Pooled judging: the calls each follower routed to a rollout's arms (its
-- candidate, the serving version and the matched control), shipped every
-- ~100 ms for the leader's judge. Kept a short while only.
CREATE TABLE fleet_arm_calls (
    id         BIGSERIAL PRIMARY KEY,
    host       TEXT NOT NULL,
    slot       TEXT NOT NULL,
    sha256     TEXT NOT NULL,
    control    SMALLINT NOT NULL,
    started_at BIGINT NOT NULL,
    latency_ms DOUBLE PRECISION NOT NULL,
    -- NULL for a call that answered, else its error class.
    class      TEXT,
    at         BIGINT NOT NULL DEFAULT kaizen_now_ms()
);
CREATE INDEX fleet_arm_calls_slot ON fleet_arm_calls (slot, id);

-- Candidates uploaded to a follower, for the leader to take into its loop.
CREATE TABLE fleet_submissions (
    id           BIGSERIAL PRIMARY KEY,
    module_id    TEXT NOT NULL,
    source       TEXT NOT NULL,
    submitted_by TEXT NOT NULL,
    at           BIGINT NOT NULL DEFAULT kaizen_now_ms(),
    taken_at     BIGINT
);

CREATE FUNCTION kaizen_notify_submitted() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('kaizen_submitted', NEW.id::TEXT);
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER fleet_submissions_notify AFTER INSERT ON fleet_submissions
    FOR EACH ROW EXECUTE FUNCTION kaizen_notify_submitted();
