"""The drawing layer and the logging of charts to a real MLflow run (airflow_ml.ml.charts.chart_drawing)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from airflow_ml.ml.charts import chart_artifacts, chart_drawing
from airflow_ml.ml.charts.drift_charts import drift_distributions
from airflow_ml.ml.charts.gate_charts import gate_scores, gate_slices
from airflow_ml.ml.charts.holdout_charts import binary_fit, regression_fit
from tests.support.gate_records import RECORD

PNG = b"\x89PNG\r\n\x1a\n"


def _run(client: MlflowClient) -> str:
    return client.create_run(client.create_experiment("charts")).info.run_id


def test_every_chart_draws_a_png(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(10, 2, 400)
    labels = (rng.uniform(size=400) < 0.4).astype(float)
    frame = pd.DataFrame({"x": rng.normal(size=400), "zone": rng.choice(["a", "b"], 400)})
    checks = [
        {"column": "x", "kind": "numeric", "statistic": "psi", "value": 0.3, "severity": "error"},
        {"column": "zone", "kind": "categorical", "statistic": "js_distance", "value": 0.01, "severity": "ok"},
    ]
    drawings = {
        "scores.png": lambda p: chart_drawing.draw_gate_scores(gate_scores(RECORD), p),
        "slices.png": lambda p: chart_drawing.draw_gate_slices(gate_slices(RECORD), p),
        "drift.png": lambda p: chart_drawing.draw_drift(drift_distributions(frame, frame, checks), p, title="t"),
        "fit.png": lambda p: chart_drawing.draw_regression_fit(regression_fit(y, y + 1, metric="rmse"), p),
        "roc.png": lambda p: chart_drawing.draw_binary_fit(binary_fit(labels, rng.uniform(size=400)), p),
    }

    for name, draw in drawings.items():
        draw(tmp_path / name)

    for name in drawings:
        data = (tmp_path / name).read_bytes()
        assert data.startswith(PNG), name
        assert len(data) > 5000, name


def test_the_gate_charts_are_logged_to_the_run_and_named_in_the_record(client: MlflowClient) -> None:
    run_id = _run(client)

    charts = chart_artifacts.log_gate_charts(client, run_id, RECORD)

    assert charts["artifacts"] == ["gate/charts/scores.png", "gate/charts/slices.png"]
    assert charts["run_id"] == run_id
    assert charts["experiment_id"] == client.get_run(run_id).info.experiment_id
    listed = {a.path: a.file_size for a in client.list_artifacts(run_id, "gate/charts")}
    assert set(listed) == set(charts["artifacts"])
    assert all(size > 5000 for size in listed.values())


def test_a_chart_that_cannot_be_drawn_is_left_out_with_a_warning(
    client: MlflowClient, caplog: pytest.LogCaptureFixture
) -> None:
    run_id = _run(client)

    logged = chart_artifacts.log_holdout_charts(
        client, run_id, "binary", [1, 1, 1], [0.2, 0.4, 0.9], metric="auc", score=None
    )

    assert logged == []
    assert client.list_artifacts(run_id) == []
    assert "chart holdout/charts/roc_calibration.png was not drawn: ValueError: a ROC curve needs both classes" in (
        caplog.text
    )


def test_the_chart_modules_import_no_matplotlib_until_they_draw() -> None:
    script = (
        "import json, sys\n"
        "import airflow_ml.ml.charts.chart_artifacts, airflow_ml.ml.charts.chart_drawing\n"
        "import airflow_ml.ml.charts.gate_charts\n"
        "print(json.dumps('matplotlib' in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)

    assert json.loads(result.stdout) is False


def test_a_challenger_refused_for_a_non_finite_score_still_gets_its_charts(tmp_path: Path) -> None:
    nan = float("nan")
    record = {
        **RECORD,
        "challenger_score": nan,
        "bootstrap": None,
        "naive_baseline": {"statistic": "mean", "score": 9.0},
    }
    record["slices"] = [{**s, "challenger_score": None, "regression": None, "judged": False} for s in RECORD["slices"]]

    chart_drawing.draw_gate_scores(gate_scores(record), tmp_path / "scores.png")
    chart_drawing.draw_gate_slices(gate_slices(record), tmp_path / "slices.png")

    assert (tmp_path / "scores.png").read_bytes().startswith(PNG)
    assert (tmp_path / "slices.png").read_bytes().startswith(PNG)


def _intervals(axes: object) -> list[tuple[float, float, float]]:
    """The horizontal interval bars of an axes: (row, low, high) per segment."""
    from matplotlib.collections import LineCollection

    found = []
    for collection in axes.collections:  # type: ignore[attr-defined]
        if isinstance(collection, LineCollection):
            for (x0, y0), (x1, _) in collection.get_segments():
                found.append((float(y0), float(x0), float(x1)))
    return sorted(found)


def test_the_scores_chart_draws_each_interval_from_its_bounds_and_the_paired_improvement_below(
    tmp_path: Path,
) -> None:
    # The challenger's interval does not contain its full-sample score: the bar still spans the interval.
    record = {
        **RECORD,
        "bootstrap": {**RECORD["bootstrap"], "challenger": [4.05, 4.3], "improvement": [0.01, 0.15]},
        "improvement": 0.09,
        "min_improvement": 0.02,
    }

    figure = chart_drawing.draw_gate_scores(gate_scores(record), tmp_path / "scores.png")

    scores, improvement = figure.axes
    assert [t.get_text() for t in scores.get_yticklabels()] == [
        "naive baseline (training mean)",
        "champion v1",
        "challenger v2",
    ]
    assert _intervals(scores) == [(1.0, 4.1, 4.6), (2.0, 4.05, 4.3)]  # challenger on top, row 2
    assert _intervals(improvement) == [(0.0, 0.01, 0.15)]
    assert 0.02 in [line.get_xdata()[0] for line in improvement.get_lines()]  # the required improvement
    assert "paired" in improvement.get_title()


def test_the_slices_chart_puts_the_breached_and_worst_on_top_in_red(tmp_path: Path) -> None:
    figure = chart_drawing.draw_gate_slices(gate_slices(RECORD), tmp_path / "slices.png")

    ticks = figure.axes[0].get_yticklabels()
    assert [t.get_text() for t in ticks][-1] == "zone=c (100) BREACHED"  # drawn last: the top row
    assert [t.get_color() for t in ticks] == ["black", "black", "#d62728"]


def test_a_dollar_in_data_is_text_not_mathtext(tmp_path: Path) -> None:
    values = ["$5-$10", "$x^{$", "a_b$$"]  # mathtext would drop the $ signs or fail to parse
    record = {**RECORD, "slices": [{**s, "value": v} for s, v in zip(RECORD["slices"], values, strict=True)]}
    frame = pd.DataFrame({"band": ["$0-$50", "$50-$100", "a_b$$"] * 40})
    checks = [{"column": "band", "kind": "categorical", "statistic": "js_distance", "value": 0.0, "severity": "ok"}]

    slices = chart_drawing.draw_gate_slices(gate_slices(record), tmp_path / "slices.png")
    drift = chart_drawing.draw_drift(drift_distributions(frame, frame, checks), tmp_path / "drift.png", title="$t$")

    assert (tmp_path / "slices.png").read_bytes().startswith(PNG)
    assert (tmp_path / "drift.png").read_bytes().startswith(PNG)
    labels = slices.axes[0].get_yticklabels() + drift.axes[0].get_xticklabels()
    assert {t.get_text().split(" (")[0] for t in labels} >= {"zone=$5-$10", "zone=$x^{$", "$0-$50", "a_b$$"}
    assert not any(t.get_parse_math() for t in labels)


def test_an_all_empty_column_drops_only_its_own_panel(tmp_path: Path) -> None:
    reference = pd.DataFrame({"x": np.arange(200.0), "empty": np.nan})
    checks = [
        {"column": "empty", "kind": "numeric", "statistic": "psi", "value": None, "severity": "warn"},
        {"column": "x", "kind": "numeric", "statistic": "psi", "value": 0.0, "severity": "ok"},
    ]

    figure = chart_drawing.draw_drift(drift_distributions(reference, reference, checks), tmp_path / "d.png", title="t")

    empty, x = figure.axes[:2]
    assert [t.get_text() for t in empty.texts] == ["no non-missing value to draw"]
    (histogram,) = x.patches  # x's histogram is drawn: one filled outline over its 20 bins
    assert len(histogram.get_data().values) == 20
    assert (tmp_path / "d.png").read_bytes().startswith(PNG)
