"""The live dashboard: static pages and scripts, and the router that serves them."""
