-- A circuit breaker an operator forced open (POST /api/v1/breakers/{target},
-- `kaizen breakers open`), so that a restart does not close it before its
-- time: until when (Unix ms), why, and when it was forced. A breaker guards
-- one host's calls, so a row belongs to one host (`host`: the fleet host
-- id, empty on a lone host). Forcing it closed or reset deletes the row.
CREATE TABLE breaker_forces (
    host     TEXT NOT NULL,
    target   TEXT NOT NULL,
    until_ms BIGINT NOT NULL,
    reason   TEXT NOT NULL,
    forced_at BIGINT NOT NULL,
    PRIMARY KEY (host, target)
);
