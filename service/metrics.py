"""What the service counts about its model and its work (Prometheus); the API serves them at `GET /metrics`
beside its own HTTP metrics (api/middleware/metrics.py)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

CLIPS = Counter("action_api_clips_processed_total", "64-frame clips run through I3D")
CLIPS_QUEUED = Gauge("action_api_clips_queued", "Clips decoded and waiting for the model")
RUNNING = Gauge("action_api_recognitions_running", "Recognitions in progress (decoding or on the model)")
GPU_MEMORY = Gauge("action_api_gpu_memory_bytes", "GPU memory TensorFlow has in use (GPU only)")
MODEL_LOADED = Gauge("action_api_model_loaded", "1 while I3D is loaded (0 after an idle unload)")
JOBS_QUEUED = Gauge("action_api_jobs_queued", "Jobs waiting in the queue")
CLIPS_INFERRED = Gauge("action_api_clips_inferred", "Clips the model has run, whatever became of their request")
CLIPS_CANCELLED = Gauge("action_api_clips_cancelled",
                        "Windows given up unfinished because their client went away or ran out of time")
