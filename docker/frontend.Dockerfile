# The upload page: Flask behind gunicorn, no TensorFlow.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

COPY requirements-frontend.txt ./
RUN pip install -r requirements-frontend.txt

COPY common/ common/
COPY frontend/ frontend/
COPY static/ static/

RUN useradd --create-home --uid 10001 app \
 && mkdir -p static/uploads var/frontend \
 && chown -R app:app static/uploads var
USER app

EXPOSE 5000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5000/health', timeout=4)"
# Each upload holds a worker thread while the API works; --timeout covers long videos on a CPU.
CMD ["sh", "-c", "exec gunicorn --bind 0.0.0.0:5000 --workers ${FRONTEND_WORKERS:-2} --threads 4 --timeout ${API_TIMEOUT_S:-900} 'frontend:create_app()'"]
