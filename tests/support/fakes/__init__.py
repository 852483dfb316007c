"""In-memory stand-ins for the services' storage adapters, for handler unit tests.

Their SQL twins keep PostgreSQL-backed integration tests.
"""
