"""Recognition on queue workers: a Celery app over Redis (`celery_app`), the task (`task`), the registry of
live workers and the model each serves (`registry`), and a worker's start-up (`worker`, the `-A` module):

    celery -A workers.worker worker --pool=solo --concurrency=1 --prefetch-multiplier=1 -Q recognition

The API turns into a gateway (api/gateway.py) when JOBS_BROKER_URL is set; nothing here imports TensorFlow
except the worker, and it loads the model once, in its own process (the solo pool never forks).
"""
