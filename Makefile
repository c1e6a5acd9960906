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

# The embedded default: Airflow on SQLite, MLflow on SQLite with local artifacts, data on local disk, all in var/.
MLFLOW_DB := sqlite:///$(VAR)/mlflow/mlflow.db
EMBEDDED := PATH="$(BIN):$$PATH" \
	AIRFLOW_HOME=$(VAR)/airflow \
	AIRFLOW__CORE__DAGS_FOLDER=$(ROOT)/dags \
	AIRFLOW__CORE__LOAD_EXAMPLES=False \
	AIRFLOW__CORE__PLUGINS_FOLDER=$(ROOT)/plugins \
	AIRFLOW_ML_DATA_ROOT=$(VAR)/data \
	AIRFLOW_ML_MLFLOW_UI_URL=http://127.0.0.1:5000 \
	AIRFLOW_CONN_MLFLOW_DEFAULT='{"conn_type": "mlflow", "extra": {"tracking_uri": "$(MLFLOW_DB)", "artifact_root": "file://$(VAR)/mlflow/artifacts"}}'

.PHONY: help install demo test check browser ui clean

help:
	@echo "make demo   install everything, then retrain every demo city twice on the embedded default"
	@echo "make test   lint, type-check, import contracts and the whole test suite (installs Debian's chromium if root)"
	@echo "make ui     serve the MLflow UI (:5000) and Airflow (:8080) on loopback for the demo's results"

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(BIN)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	touch $@

install: $(BIN)/.synced

demo: install
	rm -rf $(VAR)/data $(VAR)/mlflow
	mkdir -p $(VAR)/airflow $(VAR)/mlflow/artifacts $(VAR)/data
	$(EMBEDDED) $(BIN)/airflow db migrate > $(VAR)/airflow/db-migrate.log
	$(EMBEDDED) $(BIN)/airflow-ml lint dag_templates --expectations expectations
	$(EMBEDDED) $(BIN)/airflow-ml demo

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

test: check browser
	$(BIN)/pytest

ui: install
	mkdir -p $(VAR)/airflow $(VAR)/mlflow/artifacts
	$(BIN)/mlflow ui --backend-store-uri $(MLFLOW_DB) --default-artifact-root file://$(VAR)/mlflow/artifacts \
		--host 127.0.0.1 --port 5000 & \
	$(EMBEDDED) AIRFLOW__API__HOST=127.0.0.1 $(BIN)/airflow standalone

clean:
	rm -rf $(VAR) $(ROOT)/.venv $(TOOLS)
