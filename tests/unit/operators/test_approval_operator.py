"""PromotionApprovalOperator: its arguments, its template fields, ``execute`` when the gate needs nobody, and the
evidence a person sees in the approval request.

The request itself (a deferral answered through Airflow's HITL API) is run by tests/integration/test_approval.py.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow_ml.operators.approval_operator import PromotionApprovalOperator, approval_body
from tests.support.task_runs import OperatorWorld, templated_yaml

CHARTS = {"run_id": "abc123", "experiment_id": "7", "artifacts": ["gate/charts/scores.png", "gate/charts/slices.png"]}
FIRST = {
    "challenger_version": "1",
    "baseline_version": None,
    "gate_reason": "no champion yet",
    "metric": "rmse",
    "challenger_score": 4.1,
    "champion_score": None,
    "improvement": None,
    "snapshot_hash": "abc",
}


def test_init_writes_the_subject_from_the_model_name_and_rejects_by_default(world: OperatorWorld) -> None:
    task = world.task("approve")

    assert isinstance(task, PromotionApprovalOperator)
    assert task.model_name == "ride_duration.lisbon"
    assert task.subject == "Promote a new ride_duration.lisbon model?"
    assert task.defaults == [PromotionApprovalOperator.REJECT]
    bare = PromotionApprovalOperator(task_id="approve", model_name="m", decision={}, snapshot={})
    assert (bare.response_timeout, bare.mlflow_conn_id, bare.aws_conn_id) == (
        dt.timedelta(hours=24),
        "mlflow_default",
        "aws_default",
    )


def test_template_fields_hold_only_the_upstream_xcoms_never_the_subject(world: OperatorWorld) -> None:
    # The subject and body are written from the model name, which comes from YAML: never rendered.
    assert PromotionApprovalOperator.template_fields == ("decision", "snapshot")
    assert templated_yaml(world.task("approve")) == {}


def test_execute_asks_nobody_when_the_gate_needs_no_approval(
    world: OperatorWorld, snapshot: dict[str, Any], decision: dict[str, Any]
) -> None:
    answer, ti = world.run("approve", snapshot=snapshot, decision=decision)

    assert answer == {"approval": "not needed", "decision": "promoted"}
    assert ti.pushed == {}


def test_the_request_shows_both_scores_with_their_intervals_the_improvement_and_the_slices() -> None:
    record = {
        "challenger_version": "7",
        "baseline_version": "6",
        "gate_reason": "better by 2.1%",
        "metric": "rmse",
        "holdout_rows": 4000,
        "challenger_score": 4.1,
        "champion_score": 4.19,
        "improvement": 0.0215,
        "min_improvement": 0.005,
        "improvement_mode": "relative",
        "bootstrap": {
            "confidence": 0.95,
            "challenger": [4.0, 4.2],
            "champion": [4.1, 4.3],
            "improvement": [0.01, 0.03],
        },
        "slices": [
            {
                "column": "pickup_zone",
                "value": "Mitte",
                "rows": 900,
                "challenger_score": 4.0,
                "champion_score": 4.08,
                "judged": True,
                "breached": False,
                "regression": -0.02,
            },
        ],
        "min_slice_rows": 200,
        "max_slice_regression": 0.1,
        "snapshot_hash": "abc123",
        "trigger_reason": "",
    }

    body = approval_body(record)

    assert "| challenger | v7: 4.1 (95% CI [4, 4.2]) |" in body
    assert "| champion | v6: 4.19 (95% CI [4.1, 4.3]) |" in body
    assert "| improvement | 0.0215 (95% CI [0.01, 0.03]) (required: 0.005, relative) |" in body
    assert "1 slice(s) of pickup\\_zone; 1 judged" in body
    assert "0 breached; the worst are below" in body
    assert "| pickup\\_zone=Mitte | 900 | 4 | 4.08 | -2.0% | judged |" in body


def test_a_first_model_has_no_champion_and_no_slices() -> None:
    body = approval_body(FIRST)

    assert "| champion | none yet |" in body
    assert "| improvement | - (" in body
    assert "| slices | no slices |" in body


def test_the_request_shows_the_naive_baseline_and_the_challengers_skill_over_it() -> None:
    record = {
        "challenger_version": "1",
        "baseline_version": None,
        "gate_reason": "no champion yet: the first valid model becomes champion (skill +61.2% over the naive baseline)",
        "metric": "rmse",
        "challenger_score": 4.7,
        "champion_score": None,
        "improvement": None,
        "snapshot_hash": "abc",
        "naive_baseline": {
            "metric": "rmse",
            "statistic": "mean",
            "value": 21.34,
            "training_rows": 900,
            "score": 12.1,
            "skill": 0.612,
            "min_skill": 0.05,
            "passed": True,
        },
    }

    body = approval_body(record)
    off = approval_body({**record, "naive_baseline": None})

    assert (
        "| naive baseline | training mean 21.34 for every row: 12.1; challenger's skill +61.2% "
        "(required: more than 0 and at least 5.0%) |"
    ) in body
    assert "| naive baseline | off |" in off


def test_the_request_shows_the_gate_charts_served_by_the_mlflow_ui_each_linking_to_its_page(
    monkeypatch: Any,
) -> None:
    monkeypatch.delenv("AIRFLOW_ML_MLFLOW_UI_URL", raising=False)

    body = approval_body({**FIRST, "charts": CHARTS}, tracking_uri="http://mlflow.example:5000")

    image = "http://mlflow.example:5000/get-artifact?path=gate%2Fcharts%2Fscores.png&run_uuid=abc123"
    page = "http://mlflow.example:5000/#/experiments/7/runs/abc123/artifactPath/gate/charts/scores.png"
    assert f"[![gate chart scores.png]({image})]({page})" in body
    assert "gate%2Fcharts%2Fslices.png" in body
    assert "click a chart for full size" in body


def test_without_an_mlflow_ui_the_request_names_the_charts_artifacts(monkeypatch: Any) -> None:
    monkeypatch.delenv("AIRFLOW_ML_MLFLOW_UI_URL", raising=False)

    body = approval_body({**FIRST, "charts": CHARTS}, tracking_uri="sqlite:///mlflow.db")

    assert "`gate/charts/scores.png` `gate/charts/slices.png`" in body
    assert "artifacts of MLflow run `abc123`" in body
    assert "![" not in body
    assert "Charts" not in approval_body(FIRST, tracking_uri="sqlite:///mlflow.db")


def test_hostile_slice_values_reasons_and_names_stay_text_in_their_cells(monkeypatch: Any) -> None:
    from markdown_it import MarkdownIt

    monkeypatch.delenv("AIRFLOW_ML_MLFLOW_UI_URL", raising=False)
    hostile = [
        "a|b",
        "x` ![p](https://evil.example/p.png) [Approve is safe](https://evil.example) `",
        "\n\n# Approved by security team",
        "$5-$10",
    ]
    slices = [
        {
            "column": "zone|`city`",
            "value": value,
            "rows": 100 + i,
            "challenger_score": 1.0,
            "champion_score": 100.0,
            "regression": 0.2 - i / 10,
            "judged": True,
            "breached": False,
        }
        for i, value in enumerate(hostile)
    ]
    record = {
        **FIRST,
        "metric": "rmse|![m](https://evil.example/m.png)",
        "gate_reason": "no champion yet\n\n# Approved",
        "slices": slices,
        "min_slice_rows": 50,
        "max_slice_regression": 0.3,
        "trigger_reason": "[Approve is safe](https://evil.example)\n| forged | row |",
        "charts": CHARTS,
    }

    body = approval_body(record, tracking_uri="http://mlflow.example:5000")
    html = MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(body)

    rows = [row.split("</tr>")[0] for row in html.split("<tr>")[1:]]
    cells = [row.count("<td") + row.count("<th") for row in rows]
    assert cells == [2] * 9 + [6] * 5  # the record's table (header + 8 rows), then the slices' (header + 4)
    images = [part.split('"')[0] for part in html.split('<img src="')[1:]]
    assert images
    assert all(src.startswith("http://mlflow.example:5000/get-artifact?") for src in images)
    links = [part.split('"')[0] for part in html.split('<a href="')[1:]]
    assert all(href.startswith("http://mlflow.example:5000/#/experiments/7/") for href in links)
    assert "<h1" not in html
    assert "<code>zone" not in html
    assert "<td>zone|`city`=$5-$10</td>" in html  # the slice as written
    assert (
        '<td style="text-align:right">100</td>' in html
    )  # each slice's rows in their own cell  # each slice's numbers in their own cells
