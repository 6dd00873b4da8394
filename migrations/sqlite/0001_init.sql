-- Kaizen's state, SQLite flavour. Times are Unix milliseconds (INTEGER),
-- booleans are 0/1, JSON documents are TEXT, payloads are MessagePack BLOBs.

-- Every module ever accepted, content-addressed.
CREATE TABLE modules (
    sha256      TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    version     TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    size        INTEGER NOT NULL,
    path        TEXT NOT NULL,
    added_at    INTEGER NOT NULL
);
CREATE INDEX modules_name ON modules (name, added_at);

-- One row per slot: what serves now and what is being rolled out.
CREATE TABLE deployments (
    slot           TEXT PRIMARY KEY,
    kind           TEXT NOT NULL,
    current_sha    TEXT NOT NULL,
    previous_sha   TEXT,
    candidate_sha  TEXT,
    canary_percent REAL NOT NULL DEFAULT 0,
    state          TEXT NOT NULL,
    reason         TEXT NOT NULL DEFAULT '',
    updated_at     INTEGER NOT NULL
);

-- Every change of a slot, newest last.
CREATE TABLE deployment_history (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    slot     TEXT NOT NULL,
    sha256   TEXT NOT NULL,
    from_sha TEXT,
    state    TEXT NOT NULL,
    reason   TEXT NOT NULL DEFAULT '',
    at       INTEGER NOT NULL
);
CREATE INDEX deployment_history_slot ON deployment_history (slot, id);

-- Every recorded call of a unit.
CREATE TABLE executions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    target      TEXT NOT NULL,
    version     TEXT NOT NULL,
    started_at  INTEGER NOT NULL,
    duration_us INTEGER NOT NULL,
    outcome     TEXT NOT NULL,
    error_class TEXT,
    message     TEXT,
    request     BLOB
);
CREATE INDEX executions_target_time ON executions (target, started_at);
CREATE INDEX executions_time ON executions (started_at);

-- Metric points pushed from outside.
CREATE TABLE metrics (
    id    INTEGER PRIMARY KEY AUTOINCREMENT,
    name  TEXT NOT NULL,
    value REAL NOT NULL,
    at    INTEGER NOT NULL,
    tags  TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX metrics_name_time ON metrics (name, at);

-- Findings of detectors, deduplicated by (target, kind) while open.
CREATE TABLE findings (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    target            TEXT NOT NULL,
    kind              TEXT NOT NULL,
    detector          TEXT NOT NULL,
    severity          TEXT NOT NULL,
    confidence        REAL NOT NULL,
    summary           TEXT NOT NULL,
    evidence          TEXT NOT NULL DEFAULT '[]',
    expected_gain_pct REAL NOT NULL,
    risk              TEXT NOT NULL,
    impact            REAL NOT NULL DEFAULT 0,
    priority          TEXT NOT NULL DEFAULT 'low',
    status            TEXT NOT NULL DEFAULT 'open',
    occurrences       INTEGER NOT NULL DEFAULT 1,
    first_seen        INTEGER NOT NULL,
    last_seen         INTEGER NOT NULL
);
CREATE INDEX findings_open ON findings (status, target, kind);

-- Candidate improvements and their lifecycle.
CREATE TABLE improvements (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    finding_id    INTEGER,
    target        TEXT NOT NULL,
    candidate_sha TEXT NOT NULL,
    baseline_sha  TEXT,
    source        TEXT NOT NULL,
    state         TEXT NOT NULL,
    reason        TEXT NOT NULL DEFAULT '',
    proof         TEXT NOT NULL DEFAULT '[]',
    verdicts      TEXT NOT NULL DEFAULT '[]',
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX improvements_target ON improvements (target, id);

-- Every recovery action taken on the call path.
CREATE TABLE recovery_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    target      TEXT NOT NULL,
    version     TEXT NOT NULL,
    error_class TEXT NOT NULL,
    strategy    TEXT NOT NULL,
    action      TEXT NOT NULL,
    attempt     INTEGER NOT NULL,
    outcome     TEXT NOT NULL,
    added_ms    REAL NOT NULL,
    at          INTEGER NOT NULL
);
CREATE INDEX recovery_log_target ON recovery_log (target, error_class, strategy);

-- Learned priority of each plugin.
CREATE TABLE plugin_priorities (
    plugin     TEXT PRIMARY KEY,
    weight     REAL NOT NULL,
    confidence REAL NOT NULL,
    reason     TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);

-- Every decision, by whom and why.
CREATE TABLE audit_events (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    at     INTEGER NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_at ON audit_events (at);

-- One report per loop cycle.
CREATE TABLE cycle_reports (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT NOT NULL,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER NOT NULL,
    report      TEXT NOT NULL
);

-- The safety controller's switches; exactly one row.
CREATE TABLE control_state (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    enabled    INTEGER NOT NULL,
    paused     INTEGER NOT NULL,
    stopped    INTEGER NOT NULL,
    reason     TEXT NOT NULL,
    by_whom    TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
INSERT INTO control_state (id, enabled, paused, stopped, reason, by_whom, updated_at)
VALUES (1, 1, 0, 0, 'initial state', 'kaizen', 0);

-- Checkpoints of the in-memory rolling aggregates.
CREATE TABLE aggregates (
    target       TEXT NOT NULL,
    version      TEXT NOT NULL,
    bucket_start INTEGER NOT NULL,
    bucket       BLOB NOT NULL,
    PRIMARY KEY (target, version, bucket_start)
);
