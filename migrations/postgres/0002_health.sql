-- Host health checks: one report per check run, with what was tried and
-- any remediation taken.
CREATE TABLE health_checks (
    id      BIGSERIAL PRIMARY KEY,
    at      BIGINT NOT NULL,
    healthy BIGINT NOT NULL,
    report  TEXT NOT NULL
);
