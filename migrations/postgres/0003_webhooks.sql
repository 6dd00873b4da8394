-- Webhook deliveries: one row per notification per subscription, updated
-- as attempts are made, so an operator can see what was sent and what failed.
CREATE TABLE webhook_deliveries (
    id         BIGSERIAL PRIMARY KEY,
    at         BIGINT NOT NULL,
    url        TEXT NOT NULL,
    event      TEXT NOT NULL,
    payload    TEXT NOT NULL,
    status     TEXT NOT NULL,
    attempts   BIGINT NOT NULL,
    last_error TEXT,
    updated_at BIGINT NOT NULL
);
CREATE INDEX webhook_deliveries_at ON webhook_deliveries (at);
