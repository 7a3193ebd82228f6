"""Live recognition over a WebSocket: short-lived tokens (tokens.py) and the per-connection session (session.py)
whose windows go through the same batcher as uploads. The route is in api/routes/live.py."""
