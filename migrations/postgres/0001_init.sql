-- Kaizen's state, PostgreSQL flavour. Times are Unix milliseconds (BIGINT),
-- booleans are 0/1, JSON documents are TEXT, payloads are MessagePack BYTEAs.

-- Every module ever accepted, content-addressed.
CREATE TABLE modules (
    sha256      TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    version     TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    size        BIGINT NOT NULL,
    path        TEXT NOT NULL,
    added_at    BIGINT NOT NULL
);
CREATE INDEX modules_name ON modules (name, added_at);

-- One row per slot: what serves now and what is being rolled out.
CREATE TABLE deployments (
    slot           TEXT PRIMARY KEY,
    kind           TEXT NOT NULL,
    current_sha    TEXT NOT NULL,
    previous_sha   TEXT,
    candidate_sha  TEXT,
    canary_percent DOUBLE PRECISION NOT NULL DEFAULT 0,
    state          TEXT NOT NULL,
    reason         TEXT NOT NULL DEFAULT '',
    updated_at     BIGINT NOT NULL
);

-- Every change of a slot, newest last.
CREATE TABLE deployment_history (
    id       BIGSERIAL PRIMARY KEY,
    slot     TEXT NOT NULL,
    sha256   TEXT NOT NULL,
    from_sha TEXT,
    state    TEXT NOT NULL,
    reason   TEXT NOT NULL DEFAULT '',
    at       BIGINT NOT NULL
);
CREATE INDEX deployment_history_slot ON deployment_history (slot, id);

-- Every recorded call of a unit.
CREATE TABLE executions (
    id          BIGSERIAL PRIMARY KEY,
    target      TEXT NOT NULL,
    version     TEXT NOT NULL,
    started_at  BIGINT NOT NULL,
    duration_us BIGINT NOT NULL,
    outcome     TEXT NOT NULL,
    error_class TEXT,
    message     TEXT,
    request     BYTEA
);
CREATE INDEX executions_target_time ON executions (target, started_at);
CREATE INDEX executions_time ON executions (started_at);

-- Metric points pushed from outside.
CREATE TABLE metrics (
    id    BIGSERIAL PRIMARY KEY,
    name  TEXT NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    at    BIGINT NOT NULL,
    tags  TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX metrics_name_time ON metrics (name, at);

-- Findings of detectors, deduplicated by (target, kind) while open.
CREATE TABLE findings (
    id                BIGSERIAL PRIMARY KEY,
    target            TEXT NOT NULL,
    kind              TEXT NOT NULL,
    detector          TEXT NOT NULL,
    severity          TEXT NOT NULL,
    confidence        DOUBLE PRECISION NOT NULL,
    summary           TEXT NOT NULL,
    evidence          TEXT NOT NULL DEFAULT '[]',
    expected_gain_pct DOUBLE PRECISION NOT NULL,
    risk              TEXT NOT NULL,
    impact            DOUBLE PRECISION NOT NULL DEFAULT 0,
    priority          TEXT NOT NULL DEFAULT 'low',
    status            TEXT NOT NULL DEFAULT 'open',
    occurrences       BIGINT NOT NULL DEFAULT 1,
    first_seen        BIGINT NOT NULL,
    last_seen         BIGINT NOT NULL
);
CREATE INDEX findings_open ON findings (status, target, kind);

-- Candidate improvements and their lifecycle.
CREATE TABLE improvements (
    id            BIGSERIAL PRIMARY KEY,
    finding_id    BIGINT,
    target        TEXT NOT NULL,
    candidate_sha TEXT NOT NULL,
    baseline_sha  TEXT,
    source        TEXT NOT NULL,
    state         TEXT NOT NULL,
    reason        TEXT NOT NULL DEFAULT '',
    proof         TEXT NOT NULL DEFAULT '[]',
    verdicts      TEXT NOT NULL DEFAULT '[]',
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX improvements_target ON improvements (target, id);

-- Every recovery action taken on the call path.
CREATE TABLE recovery_log (
    id          BIGSERIAL PRIMARY KEY,
    target      TEXT NOT NULL,
    version     TEXT NOT NULL,
    error_class TEXT NOT NULL,
    strategy    TEXT NOT NULL,
    action      TEXT NOT NULL,
    attempt     BIGINT NOT NULL,
    outcome     TEXT NOT NULL,
    added_ms    DOUBLE PRECISION NOT NULL,
    at          BIGINT NOT NULL
);
CREATE INDEX recovery_log_target ON recovery_log (target, error_class, strategy);

-- Learned priority of each plugin.
CREATE TABLE plugin_priorities (
    plugin     TEXT PRIMARY KEY,
    weight     DOUBLE PRECISION NOT NULL,
    confidence DOUBLE PRECISION NOT NULL,
    reason     TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Every decision, by whom and why.
CREATE TABLE audit_events (
    id     BIGSERIAL PRIMARY KEY,
    at     BIGINT NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_at ON audit_events (at);

-- One report per loop cycle.
CREATE TABLE cycle_reports (
    id          BIGSERIAL PRIMARY KEY,
    kind        TEXT NOT NULL,
    started_at  BIGINT NOT NULL,
    finished_at BIGINT NOT NULL,
    report      TEXT NOT NULL
);

-- The safety controller's switches; exactly one row.
CREATE TABLE control_state (
    id         BIGINT PRIMARY KEY CHECK (id = 1),
    enabled    BIGINT NOT NULL,
    paused     BIGINT NOT NULL,
    stopped    BIGINT NOT NULL,
    reason     TEXT NOT NULL,
    by_whom    TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
INSERT INTO control_state (id, enabled, paused, stopped, reason, by_whom, updated_at)
VALUES (1, 1, 0, 0, 'initial state', 'kaizen', 0);

-- Checkpoints of the in-memory rolling aggregates.
CREATE TABLE aggregates (
    target       TEXT NOT NULL,
    version      TEXT NOT NULL,
    bucket_start BIGINT NOT NULL,
    bucket       BYTEA NOT NULL,
    PRIMARY KEY (target, version, bucket_start)
);
