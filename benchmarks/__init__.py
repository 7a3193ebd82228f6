"""`make bench` (`python -m benchmarks`): speed and memory of this service against a naive baseline."""
