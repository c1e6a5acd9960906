"""A chart never fails its task: bad record data, a broken matplotlib, NumPy 1.x and an MLflow refusal only warn."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from mlflow import MlflowClient

from airflow_ml.ml.charts import chart_artifacts, chart_drawing
from airflow_ml.ml.charts.holdout_charts import binary_fit, roc_points
from tests.support.gate_records import RECORD


def _run(client: MlflowClient) -> str:
    return client.create_run(client.create_experiment("chart-failures")).info.run_id


def test_a_record_whose_scores_cannot_be_read_still_logs_its_slices_chart(
    client: MlflowClient, caplog: pytest.LogCaptureFixture
) -> None:
    run_id = _run(client)

    charts = chart_artifacts.log_gate_charts(client, run_id, {**RECORD, "challenger_score": None})

    assert charts is not None
    assert charts["artifacts"] == ["gate/charts/slices.png"]
    assert "chart gate/charts/scores.png was not drawn: TypeError" in caplog.text


def test_a_slice_without_rows_leaves_out_only_the_slices_chart(client: MlflowClient) -> None:
    record = {**RECORD, "slices": [{**RECORD["slices"][0], "rows": None}]}

    charts = chart_artifacts.log_gate_charts(client, _run(client), record)

    assert charts is not None
    assert charts["artifacts"] == ["gate/charts/scores.png"]


def test_without_matplotlib_no_chart_is_logged_and_nothing_raises(
    client: MlflowClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)  # import raises ImportError
    run_id = _run(client)

    charts = chart_artifacts.log_gate_charts(client, run_id, RECORD)
    holdout = chart_artifacts.log_holdout_charts(
        client, run_id, "regression", [1.0, 2.0], [1.5, 2.5], metric="rmse", score=None
    )

    assert charts is not None
    assert charts["artifacts"] == []
    assert holdout == []
    assert client.list_artifacts(run_id) == []
    assert "was not drawn: ModuleNotFoundError: import of matplotlib" in caplog.text


def test_an_mlflow_refusal_only_warns(client: MlflowClient, caplog: pytest.LogCaptureFixture) -> None:
    missing = "0" * 32  # no such run: get_run and log_artifacts raise MlflowException

    gate = chart_artifacts.log_gate_charts(client, missing, RECORD)
    holdout = chart_artifacts.log_holdout_charts(
        client, missing, "regression", [1.0, 2.0], [1.5, 2.5], metric="rmse", score=None
    )

    assert gate is None
    assert holdout == []
    assert f"charts holdout/charts were not logged to run {missing}" in caplog.text
    assert "charts gate/charts were not logged" in caplog.text


def test_an_unexpected_error_of_the_drawing_layer_only_warns(
    client: MlflowClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object, **kwargs: object) -> list[str]:
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(chart_drawing, "log_charts", broken)

    assert chart_artifacts.log_gate_charts(client, _run(client), RECORD) is None
    assert "charts gate/charts were not logged: RuntimeError: the disk is full" in caplog.text


def test_the_auc_needs_no_numpy_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(np, "trapezoid", raising=False)  # NumPy 1.x has no np.trapezoid
    monkeypatch.delattr(np, "trapz", raising=False)  # and NumPy 2.x may drop np.trapz
    labels = np.array([0, 0, 1, 1, 0, 1])
    scores = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9])

    fit = binary_fit(labels, scores)

    fpr, tpr, _ = roc_points(labels, scores)
    expected = sum((b - a) * (c + d) / 2 for a, b, c, d in zip(fpr, fpr[1:], tpr, tpr[1:], strict=False))
    assert fit.auc == pytest.approx(expected)
    assert fit.auc == pytest.approx(8 / 9)  # 8 of the 9 positive-negative pairs are ranked right
