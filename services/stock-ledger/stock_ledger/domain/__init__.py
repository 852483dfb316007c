"""Pure rules: which movements an event makes, positions and what was last emitted, alert rules."""
