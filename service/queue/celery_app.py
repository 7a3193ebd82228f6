"""The Celery app both sides share: the API gateway sends tasks with it (`service.queue.executor`), a worker
runs them (workers/).

JSON messages only; a task carries the job id and the upload's name in SHARED_UPLOAD_DIR, never bytes.
Late acks: a message leaves Redis only once its job has finished, so a worker killed mid-job loses nothing:
after JOBS_REDELIVER_AFTER_S (longer than the longest job) Redis hands it to another worker.
"""

from __future__ import annotations

from celery import Celery

from service.settings import Settings

QUEUE = "recognition"
TASK = "workers.recognize"
PART_TASK = "workers.recognize_part"  # one part of a game (`service.queue.game`)
CONNECT_TIMEOUT_S = 3  # a Redis that is down answers 503 quickly instead of hanging requests


def make_celery(settings: Settings) -> Celery:
    if not settings.jobs_broker_url:
        raise ValueError("JOBS_BROKER_URL is not set (e.g. redis://127.0.0.1:6379/0)")
    redis_options = {"socket_connect_timeout": CONNECT_TIMEOUT_S, "socket_timeout": 30, "retry_on_timeout": True}
    app = Celery("action_recognition", broker=settings.jobs_broker_url, backend=settings.jobs_broker_url,
                 set_as_current=False)
    app.conf.update(
        task_serializer="json", result_serializer="json", accept_content=["json"], result_accept_content=["json"],
        task_default_queue=QUEUE,
        task_acks_late=True,  # acknowledged when the job is done, not when a worker takes it
        task_reject_on_worker_lost=True,
        task_track_started=True,
        worker_prefetch_multiplier=1,  # a busy worker holds no second job that an idle one could run
        worker_concurrency=1,
        worker_pool="solo",
        worker_hijack_root_logger=False,
        result_expires=settings.jobs_ttl_s,
        result_backend_transport_options=redis_options,
        redis_socket_connect_timeout=CONNECT_TIMEOUT_S,
        redis_socket_timeout=30,
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            **redis_options,
            "visibility_timeout": settings.redeliver_after_s,
            "unacked_restore_interval": min(10.0, max(1.0, settings.redeliver_after_s / 4)),
            "unacked_restore_throttle": 1,  # every sweep looks: a dead worker's job comes back on time
        },
        task_publish_retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1},
    )
    return app
