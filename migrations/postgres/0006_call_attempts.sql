-- One caller's call is one execution however many attempts it took: the
-- attempts made for it (the first, then every retry and fallback) and
-- whether recovery turned its failure into an answer. Rows written before
-- this migration were attempts recorded one by one: one attempt each.
ALTER TABLE executions ADD COLUMN attempts BIGINT NOT NULL DEFAULT 1;
ALTER TABLE executions ADD COLUMN recovered BOOLEAN NOT NULL DEFAULT FALSE;
