from scheme_engine.main import run

run()
