"""Pure rules of accepting an event: validation, write policy, territory, location verdicts, batch results."""
