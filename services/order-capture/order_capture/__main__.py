from order_capture.main import run

run()
