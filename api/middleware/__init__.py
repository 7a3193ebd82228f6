"""What wraps every request: CORS, the header limit, HTTP metrics, refusals as answers."""
