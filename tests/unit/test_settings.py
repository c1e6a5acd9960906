"""Run-time settings: a missing data root is an error that says which variable to set."""

from __future__ import annotations

import pytest

from airflow_ml import settings
from airflow_ml.exceptions import ConfigError


def test_data_root_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_ML_DATA_ROOT", "s3://lake/ml/")
    assert settings.data_root() == "s3://lake/ml"


def test_an_explicit_data_root_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_ML_DATA_ROOT", "/from/env")
    assert settings.data_root("/explicit") == "/explicit"


def test_missing_data_root_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_ML_DATA_ROOT", raising=False)
    with pytest.raises(ConfigError, match="set AIRFLOW_ML_DATA_ROOT"):
        settings.data_root()


def test_importing_the_package_turns_telemetry_off_unless_opted_in() -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("GX_ANALYTICS_ENABLED", "MLFLOW_DISABLE_TELEMETRY")}
    env["DO_NOT_TRACK"] = "0"  # a user's own choice is kept
    names = ("GX_ANALYTICS_ENABLED", "MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK")
    script = f"import airflow_ml, os; print(*(os.environ[n] for n in {names!r}))"
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["false", "true", "0"]
