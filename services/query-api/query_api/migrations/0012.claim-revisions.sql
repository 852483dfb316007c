-- depends: 0011.stock-values-numeric
-- A claim id submitted again is a new revision of the claim (ClaimAssessed v2): which one the assessment is of,
-- and every submission received so far. Assessments applied before were of the claim's only known revision.
ALTER TABLE claim_assessments ADD COLUMN claim_revision integer NOT NULL DEFAULT 1;
ALTER TABLE claim_assessments ADD COLUMN submissions jsonb NOT NULL DEFAULT '[]';
