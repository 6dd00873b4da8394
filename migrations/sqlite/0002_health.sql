-- Host health checks: one report per check run, with what was tried and
-- any remediation taken.
CREATE TABLE health_checks (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      INTEGER NOT NULL,
    healthy INTEGER NOT NULL,
    report  TEXT NOT NULL
);
