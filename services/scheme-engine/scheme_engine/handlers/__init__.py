"""The evaluation consumer's batch: it decides, storage is behind ports.SchemeStore."""
