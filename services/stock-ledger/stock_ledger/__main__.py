from stock_ledger.main import run

run()
