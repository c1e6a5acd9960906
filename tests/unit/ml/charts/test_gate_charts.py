"""The gate's charts as data: what is drawn equals what the gate decided on (airflow_ml.ml.charts.gate_charts)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from airflow_ml.ml.charts.gate_charts import gate_scores, gate_slices, slice_table
from airflow_ml.ml.gate.judge import judge
from airflow_ml.ml.gate.naive_baseline import NaiveBaseline
from airflow_ml.ml.gate.rules import GateRules
from airflow_ml.ml.model_registry import decision_tags


@pytest.fixture(scope="module")
def record() -> dict:
    """A real decision on 600 rows: the challenger better overall, much worse in zone ``c``; JSON round-tripped."""
    rng = np.random.default_rng(3)
    y = rng.normal(20, 5, 600)
    zones = np.array(["a", "b", "c"] * 200)
    challenger = y + rng.normal(0, 1, 600)
    champion = y + rng.normal(0, 2, 600)
    challenger[zones == "c"] = y[zones == "c"] + rng.normal(0, 4, 200)
    decision = judge(
        "rmse",
        y,
        challenger,
        champion,
        rules=GateRules(
            bootstrap={"resamples": 200, "confidence": 0.9, "seed": 1},
            slices=[{"column": "zone"}],
            max_slice_regression=0.2,
            min_slice_rows=50,
            naive_baseline=NaiveBaseline(),
        ),
        columns={"zone": zones},
        training_target=rng.normal(20, 5, 300),
    )
    extra = {"metric": "rmse", "challenger_version": "4", "baseline_version": "3"}
    return json.loads(json.dumps({**decision.to_dict(), **extra}))


def test_the_scores_chart_holds_the_records_scores_and_bootstrap_intervals(record: dict) -> None:
    chart = gate_scores(record)

    by_role = {p.role: p for p in chart.points}
    assert [p.role for p in chart.points] == ["challenger", "champion", "naive"]
    assert by_role["challenger"].score == record["challenger_score"]
    assert by_role["challenger"].interval == tuple(record["bootstrap"]["challenger"])
    assert by_role["champion"].score == record["champion_score"]
    assert by_role["champion"].interval == tuple(record["bootstrap"]["champion"])
    assert by_role["naive"].score == record["naive_baseline"]["score"]
    assert by_role["naive"].interval is None  # the baseline is a constant: no resampled interval
    assert by_role["champion"].label == "champion v3"
    low, high = by_role["challenger"].interval
    assert low <= by_role["challenger"].score <= high
    assert chart.title == "rmse on the holdout (600 rows): lower is better, 90% bootstrap intervals per model"


def test_a_first_model_is_drawn_alone_with_the_baseline_and_without_intervals() -> None:
    record = {"metric": "auc", "direction": "maximize", "challenger_version": "1", "challenger_score": 0.8}

    chart = gate_scores({**record, "champion_score": None, "bootstrap": None, "naive_baseline": None})

    assert [(p.role, p.score, p.interval) for p in chart.points] == [("challenger", 0.8, None)]
    assert chart.title == "auc on the holdout: higher is better"


def test_the_slices_chart_holds_both_models_scores_per_slice_breached_first(record: dict) -> None:
    chart = gate_slices(record)

    assert chart is not None
    assert chart.bars[0].name == "zone=c"
    assert chart.bars[0].breached is True
    by_name = {s["column"] + "=" + s["value"]: s for s in record["slices"]}
    assert {b.name for b in chart.bars} == set(by_name)
    for bar in chart.bars:
        assert (bar.challenger, bar.champion, bar.rows) == (
            by_name[bar.name]["challenger_score"],
            by_name[bar.name]["champion_score"],
            by_name[bar.name]["rows"],
        )
    regressions = [b.regression for b in chart.bars[1:]]
    assert regressions == sorted(regressions, reverse=True)  # then the worst regressions first


def test_a_long_slice_list_keeps_the_worst_and_counts_the_rest() -> None:
    slices = [
        {
            "column": "hour",
            "value": str(h),
            "rows": 100,
            "challenger_score": 1.0,
            "champion_score": 1.0,
            "regression": h / 100,
            "judged": True,
            "breached": False,
        }
        for h in range(24)
    ]

    chart = gate_slices({"metric": "mae", "slices": slices}, limit=5)

    assert chart is not None
    assert [b.name for b in chart.bars] == ["hour=23", "hour=22", "hour=21", "hour=20", "hour=19"]
    assert chart.left_off == 19
    table = slice_table(chart, rows=3)
    assert "| hour=23 | 100 | 1 | 1 | +23.0% | judged |" in table
    assert "21 more slice(s)" in table
    assert gate_slices({"slices": []}) is None


def test_the_slice_table_marks_the_breached_slice(record: dict) -> None:
    chart = gate_slices(record)

    assert chart is not None
    first = slice_table(chart).splitlines()[2]
    assert first.startswith("| zone=c | 200 |")
    assert first.endswith("| **breached** |")


def test_the_charts_paths_are_no_version_tag(record: dict) -> None:
    charts = {"run_id": "r", "experiment_id": "1", "artifacts": ["gate/charts/scores.png"]}

    tags = decision_tags({**record, "charts": charts})

    assert not [key for key in tags if "chart" in key]
    assert tags["gate.challenger_score"] == json.dumps(record["challenger_score"])


def test_the_scores_chart_holds_the_paired_improvement_interval_the_gate_judged() -> None:
    record = {
        "metric": "rmse",
        "challenger_version": "2",
        "baseline_version": "1",
        "challenger_score": 4.0,
        "champion_score": 4.4,
        "improvement": 0.09,
        "min_improvement": 0.02,
        "improvement_mode": "relative",
        "bootstrap": {
            "confidence": 0.95,
            "challenger": [3.8, 4.2],
            "champion": [4.1, 4.6],
            "improvement": [0.05, 0.12],
        },
    }

    gain = gate_scores(record).improvement

    assert gain is not None
    assert (gain.value, gain.interval, gain.required, gain.mode) == (0.09, (0.05, 0.12), 0.02, "relative")
    assert gate_scores({**record, "improvement": None}).improvement is None  # no champion, no improvement


def test_a_nan_regression_read_from_json_sorts_as_unknown() -> None:
    rows = [
        {"column": "z", "value": v, "rows": 9, "regression": r, "judged": True, "breached": False}
        for v, r in zip("abcd", [0.1, float("nan"), 0.5, 0.3], strict=True)
    ]

    chart = gate_slices({"slices": rows})

    assert chart is not None
    assert [b.name for b in chart.bars] == ["z=c", "z=d", "z=a", "z=b"]
