from query_api.jobs.rebuild.cli import app

app()
