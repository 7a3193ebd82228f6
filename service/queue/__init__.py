"""The queue side of jobs: the Celery app both sides share, the Redis registry of live workers, and the
executor that sends jobs to them (`QueuedJobs`). A worker process runs them (workers/)."""
