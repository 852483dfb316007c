"""scheme-engine: Trade-scheme evaluation and claim assessment (issue 4)."""
