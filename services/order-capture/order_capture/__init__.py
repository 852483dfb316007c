"""order-capture: the front door for field and connector events."""
