"""Shared runtime for Sellthrough services. Domain code never lives here."""
