"""`sellthrough-rebuild` (`python -m query_api.jobs.rebuild`): query-api's projections rebuilt from the topics
into a new schema through a bulk path, then swapped in while reads keep serving the old one (README, "Rebuilding
the projections")."""
