"""The write side: projections that turn consumed events into the tables the reads query, and their registry."""
