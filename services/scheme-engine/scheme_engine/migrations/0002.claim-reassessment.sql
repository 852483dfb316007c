-- The last assessment emitted per claim, so a claim is re-assessed whenever its scheme's grants change and
-- a ClaimAssessed is emitted only when the assessment differs.
ALTER TABLE claims ADD COLUMN assessed jsonb;
