"""The health check's judgement of a model's predictions, with real pyfunc models, and its config errors."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest
from mlflow.models import infer_signature

from airflow_ml.exceptions import ConfigError
from airflow_ml.ml.health import HealthThresholds, check_predictions
from airflow_ml.templates import load_city_file
from tests.support import REPO

ROWS = pd.DataFrame({"distance_km": np.linspace(1, 20, 200), "hour": np.arange(200) % 24})
REFERENCE = pd.Series(ROWS["distance_km"] * 3.0)


class Scaled(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    """Predicts ``factor * distance_km + offset``, or a constant, or NaN for the first row."""

    def __init__(self, factor: float, offset: float = 0.0, nan_first: bool = False) -> None:
        self.factor, self.offset, self.nan_first = factor, offset, nan_first

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> np.ndarray:
        out = model_input["distance_km"].to_numpy(dtype=float) * self.factor + self.offset
        if self.nan_first:
            out[0] = np.nan
        return out


def _load(tmp_path: Path, model: Scaled) -> Any:
    path = tmp_path / "model"
    mlflow.pyfunc.save_model(
        path=str(path),
        python_model=model,
        signature=infer_signature(ROWS, REFERENCE.to_numpy()),
        pip_requirements=["mlflow"],
    )
    return mlflow.pyfunc.load_model(str(path))


def test_a_model_matching_its_holdout_predictions_passes(tmp_path: Path) -> None:
    record = check_predictions(_load(tmp_path, Scaled(3.0)), ROWS, REFERENCE, HealthThresholds())
    assert record["passed"] is True
    assert record["problems"] == []
    assert record["mean_shift"] == 0.0


def test_a_shifted_distribution_fails_naming_the_shift(tmp_path: Path) -> None:
    record = check_predictions(_load(tmp_path, Scaled(3.0, offset=40.0)), ROWS, REFERENCE, HealthThresholds())
    assert record["passed"] is False
    assert record["problems"][0].startswith("distribution: the mean prediction moved ")
    assert "more than 1.0" in record["problems"][0]
    assert any("50% quantile" in p for p in record["problems"])


def test_constant_and_non_finite_predictions_fail(tmp_path: Path) -> None:
    constant = check_predictions(_load(tmp_path / "c", Scaled(0.0, offset=5.0)), ROWS, REFERENCE, HealthThresholds())
    assert constant["problems"] == ["predictions: every prediction is the same value; the model predicts a constant"]
    nan = check_predictions(_load(tmp_path / "n", Scaled(3.0, nan_first=True)), ROWS, REFERENCE, HealthThresholds())
    assert nan["problems"] == ["predictions: 1 of 200 are NaN or infinite"]


def test_rows_missing_a_signature_column_fail_the_schema_check(tmp_path: Path) -> None:
    record = check_predictions(_load(tmp_path, Scaled(3.0)), ROWS.drop(columns="hour"), REFERENCE, HealthThresholds())
    assert record["problems"] == ["schema: the model expects columns ['hour'] that the snapshot lacks"]


def test_rows_of_the_wrong_type_fail_the_schema_check(tmp_path: Path) -> None:
    rows = ROWS.assign(hour="noon")
    record = check_predictions(_load(tmp_path, Scaled(3.0)), rows, REFERENCE, HealthThresholds())
    assert record["passed"] is False
    assert record["problems"][0].startswith("schema: the model refused the snapshot's rows: ")


def test_a_negative_health_threshold_is_a_config_error_naming_the_field(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "cities").mkdir()
    shutil.copy(REPO / "dag_templates" / "templates" / "ride_duration.yaml", tmp_path / "templates")
    path = tmp_path / "cities" / "oslo.yaml"
    path.write_text("city: oslo\ntemplate: ride_duration\nhealth:\n  max_mean_shift: -1\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_city_file(path, tmp_path / "templates")
    text = str(info.value)
    assert "health.max_mean_shift" in text
    assert "-1" in text
    assert "oslo.yaml" in text
