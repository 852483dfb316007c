from query_api.notify.cli import app

app()
