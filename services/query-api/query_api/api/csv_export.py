"""Moved to query_api.api.exports (CSV, Parquet and Excel); these names stay importable from here."""

from query_api.api.exports import CSV_RESPONSE, Format, csv_response, export_response, safe_cell, to_csv

__all__ = ["CSV_RESPONSE", "Format", "csv_response", "export_response", "safe_cell", "to_csv"]
