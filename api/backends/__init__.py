"""Where recognitions run: in this process (local.py) or on queue workers (gateway.py)."""
