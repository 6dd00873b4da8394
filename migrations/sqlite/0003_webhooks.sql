-- Webhook deliveries: one row per notification per subscription, updated
-- as attempts are made, so an operator can see what was sent and what failed.
CREATE TABLE webhook_deliveries (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         INTEGER NOT NULL,
    url        TEXT NOT NULL,
    event      TEXT NOT NULL,
    payload    TEXT NOT NULL,
    status     TEXT NOT NULL,
    attempts   INTEGER NOT NULL,
    last_error TEXT,
    updated_at INTEGER NOT NULL
);
CREATE INDEX webhook_deliveries_at ON webhook_deliveries (at);
