from query_api.main import run

run()
