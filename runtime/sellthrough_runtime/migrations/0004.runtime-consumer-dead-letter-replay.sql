-- depends: 0003.runtime-consumer-producer-generations
-- Dead letters can be replayed once their cause is fixed (sellthrough-dead-letters). A replayed letter is kept
-- for audit with when and how it was resolved; one that fails again keeps its row with the new reason.
ALTER TABLE dead_letters
    ADD COLUMN attempts        integer     NOT NULL DEFAULT 0,
    ADD COLUMN last_attempt_at timestamptz,
    ADD COLUMN resolved_at     timestamptz,
    ADD COLUMN resolution      text CHECK (resolution IN ('applied', 'already_applied', 'not_wanted'));
CREATE INDEX dead_letters_unresolved ON dead_letters (group_id, id) WHERE resolved_at IS NULL;
