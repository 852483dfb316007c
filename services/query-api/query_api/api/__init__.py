"""HTTP routers, one per resource, and the dependencies they share (parameters, the caller's scope, CSV)."""
