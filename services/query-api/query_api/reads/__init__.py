"""The SQL of the reads: each module queries the projections for one resource of the API."""
