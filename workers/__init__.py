"""A recognition worker's entry: its start-up (`worker`, the `-A` module: the model loaded once per process),
the task's body (`task`) and the container's health check (`health`). The Celery app, the registry of live
workers and the executor that sends jobs here are the service layer's (`service.queue`):

    celery -A workers.worker worker --pool=solo --concurrency=1 --prefetch-multiplier=1 -Q recognition

Nothing here imports `api` or a web framework; the worker loads the model once, in its own process (the solo
pool never forks).
"""
