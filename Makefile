# airflow-ml: two commands on a fresh machine with python3 and make: `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
UV_VERSION := 0.13.8
ROOT := $(abspath .)
VAR := $(ROOT)/var
TOOLS := $(ROOT)/.tools
UV := $(TOOLS)/bin/uv
BIN := $(ROOT)/.venv/bin

# uv: the machine's own interpreter, bytecode compiled (imports are 2-3x slower without it).
export UV_COMPILE_BYTECODE := 1
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(ROOT)/.venv
# The product never phones home.
export GX_ANALYTICS_ENABLED := false
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := 1
export SCARF_NO_ANALYTICS := true

# The embedded default (Airflow on SQLite, MLflow on SQLite with local artifacts, data on local disk) is computed by
# airflow_ml/embedded.py, never here: `airflow-ml env` prints it for your own cities (var/), `airflow-ml env --demo`
# for the demo's own folder (var/demo/); `airflow-ml run`, `status` and `demo` set it themselves.
DEMO_ENV = eval "$$($(BIN)/airflow-ml env --demo)" && export PATH="$(BIN):$$PATH"
# A recipe line that shows its command as typed in the activated .venv (`$ airflow-ml demo`), then runs .venv's.
VENV_RUN = @echo '$$ $(1)' && $(BIN)/$(1)

.PHONY: help install demo test test-slow test-benchmarks check browser compose-client ui clean

help:
	@echo "make demo   install everything, then retrain every demo city twice in the demo's own folder var/demo/"
	@echo "make test   lint, type-check, import contracts and the test suite but its slow cases (installs Debian's chromium and"
	@echo "            docker-compose if root)"
	@echo "make test-benchmarks  the benchmark scripts at a tiny size (not in make test): before recording a figure"
	@echo "make test-slow        the slow cases (Dask clusters, statistical simulations; not in make test)"
	@echo "make ui     serve the demo's results (var/demo/): the MLflow UI (:5000) and Airflow (:8080) on loopback"
	@echo "make clean  delete .venv, .tools and the demo's var/demo/; your own cities' var/ stays"

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(BIN)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	touch $@

install: $(BIN)/.synced

# The demo resets only its own var/demo/data and var/demo/mlflow (and says so); your var/ is never touched.
demo: install
	$(call VENV_RUN,airflow-ml lint dag_templates --expectations expectations)
	$(call VENV_RUN,airflow-ml demo)

check: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# The browser test (tests/services/test_ui_browser.py) drives Debian's Chromium; Playwright never downloads one.
CHROMIUM ?= /usr/bin/chromium
export AIRFLOW_ML_CHROMIUM := $(CHROMIUM)

browser:
	@if [ -x "$(CHROMIUM)" ]; then \
		echo "chromium: $$($(CHROMIUM) --version 2>/dev/null)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; \
	else \
		echo "Chromium is missing at $(CHROMIUM): sudo apt-get install -y --no-install-recommends chromium" \
			"(the browser tests skip until then, and fail under .ci/run)"; \
	fi

# The compose test (tests/unit/test_compose.py) validates docker-compose.yaml with a compose client; no engine runs.
compose-client:
	@if command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1; then \
		echo "compose client: $$(docker-compose version --short 2>/dev/null || docker compose version --short)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends docker-compose; \
	else \
		echo "No compose client: sudo apt-get install -y --no-install-recommends docker-compose" \
			"(the compose test skips until then, and fails under .ci/run)"; \
	fi

# The slow tier (marker slow: the Dask cluster tests and the statistical simulations, about 10 minutes) runs apart:
# `make test` leaves it out to keep CI under 45 minutes on a slow 2-core machine. Run it when you touch the Dask
# engine, drift calibration or the gate, and before a release.
test: check browser compose-client
	$(BIN)/pytest -m "not slow"

test-slow: install
	$(BIN)/pytest -m slow

# The benchmark tier: each script of benchmarks/ as committed, at a tiny size (5 minutes on a quiet 2-core machine,
# 8-10 loaded); `make test` leaves it out to keep CI under 45 minutes. Run it when a script changes and before a
# figure is recorded.
test-benchmarks: install
	$(BIN)/pytest tests/benchmarks

# mlflow ui reads the demo's store from MLFLOW_BACKEND_STORE_URI and MLFLOW_DEFAULT_ARTIFACT_ROOT.
ui: install
	@$(DEMO_ENV) && echo "the demo's results ($(VAR)/demo): MLflow on http://127.0.0.1:5000, Airflow on http://127.0.0.1:8080" \
		&& { $(BIN)/mlflow ui --host 127.0.0.1 --port 5000 & AIRFLOW__API__HOST=127.0.0.1 $(BIN)/airflow standalone; }

clean:
	rm -rf $(VAR)/demo $(ROOT)/.venv $(TOOLS)
	@echo "kept $(VAR) (your own cities' Airflow home, data and MLflow store)"
