-- What a finding is about (contract 0.2): security, reliability,
-- performance, quality or coverage. Findings recorded before this were all
-- from detectors of the reliability kind.
ALTER TABLE findings ADD COLUMN category TEXT NOT NULL DEFAULT 'reliability';
