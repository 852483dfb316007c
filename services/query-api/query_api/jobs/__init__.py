"""Background jobs the service runs beside its consumers."""
