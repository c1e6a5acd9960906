"""The fleet view shows the last decision's skill over the naive baseline, and a champion that was deleted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from airflow_ml.fleet.html import render
from airflow_ml.fleet.metadata import CityDag
from airflow_ml.fleet.model_states import read_models
from airflow_ml.fleet.rows import NO_MODEL, build_rows
from airflow_ml.ml import model_registry as registry

REFUSED = {
    "metric": "rmse",
    "statistic": "mean",
    "value": 21.3,
    "training_rows": 900,
    "score": 12.1,
    "skill": -0.017,
    "min_skill": 0.05,
    "passed": False,
}


@pytest.fixture
def client(tmp_path: Path) -> MlflowClient:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _version(client: MlflowClient, name: str, tmp_path: Path, record: dict[str, Any] | None = None) -> str:
    if not client.search_registered_models(filter_string=f"name = '{name}'"):
        client.create_registered_model(name)
    source = tmp_path / "models" / name
    source.mkdir(parents=True, exist_ok=True)
    version = str(client.create_model_version(name, str(source)).version)
    if record is not None:
        registry.tag_decision(client, name, version, record)  # as the gate writes its record
    return version


def _rows(client: MlflowClient, *names: str) -> dict[str, dict[str, Any]]:
    models = read_models(client, list(names))
    return {row["dag_id"]: row for row in build_rows([CityDag(n, n.split(".")[1]) for n in names], {}, {}, models)}


def test_the_last_decisions_naive_baseline_is_a_column(client: MlflowClient, tmp_path: Path) -> None:
    _version(
        client, "tpl.a", tmp_path, {"decision": "kept", "reason": "worse than the mean", "naive_baseline": REFUSED}
    )
    _version(client, "tpl.b", tmp_path, {"decision": "kept", "reason": "older record", "naive_baseline": None})
    unmeasured = {**REFUSED, "score": 0.0, "skill": float("nan")}  # a perfect baseline: no skill to measure
    _version(client, "tpl.c", tmp_path, {"decision": "kept", "reason": "perfect", "naive_baseline": unmeasured})

    rows = _rows(client, "tpl.a", "tpl.b", "tpl.c")
    page = render(list(rows.values()), generated_at="now")

    assert rows["tpl.a"]["naive_baseline"] == {k: REFUSED[k] for k in REFUSED if k != "training_rows"}
    assert rows["tpl.b"]["naive_baseline"] is None  # a decision from before the rule
    assert 'data-sort="naive-baseline">Vs naive</button></th>' in page
    assert 'class="naive-baseline" data-skill="-0.017" data-passed="false"' in page
    assert "-1.7%" in page
    assert "vs training mean: rmse 12.1, required 5.0%" in page
    assert 'class="naive-baseline" data-skill="" data-passed=""' in page
    assert rows["tpl.c"]["naive_baseline"]["skill"] is None
    assert 'data-skill="" data-passed="false" data-sort=""><span class="reason">no skill measured' in page
    json.dumps(rows, allow_nan=False)  # the JSON API refuses NaN


def test_a_deleted_champion_is_not_shown_as_none_yet(client: MlflowClient, tmp_path: Path) -> None:
    for name in ("tpl.a", "tpl.b", "tpl.c"):
        first = _version(client, name, tmp_path, {"decision": "promoted", "reason": "first"})
        registry.promote(client, name, first, {"decision": "promoted"})
    second = _version(client, "tpl.b", tmp_path, {"decision": "promoted", "reason": "better"})
    registry.promote(client, "tpl.b", second, {"decision": "promoted"})
    client.delete_model_version("tpl.a", "1")  # MLflow removes the champion alias with the version
    client.delete_model_version("tpl.b", second)

    rows = _rows(client, "tpl.a", "tpl.b", "tpl.c", "tpl.d")

    assert rows["tpl.a"]["champion"] is None
    assert rows["tpl.a"]["champion_note"] == (
        "no champion: its champion v1 was deleted, or its alias removed; the next run's challenger may become champion"
    )
    assert "v2 was deleted" in rows["tpl.b"]["champion_note"]
    assert rows["tpl.c"]["champion"] == {"version": "1", "metric": None, "value": None}
    assert rows["tpl.d"]["champion_note"] == NO_MODEL  # never registered: still "none yet"
    json.dumps(rows, allow_nan=False)  # JSON-ready


def test_the_champions_live_metric_stands_beside_its_holdout_score_with_its_trend(
    client: MlflowClient, tmp_path: Path
) -> None:
    version = _version(client, "tpl.a", tmp_path, {"decision": "promoted", "metric": "rmse", "challenger_score": 5.5})
    registry.promote(client, "tpl.a", version, {})
    monitor = {  # as the monitor tags the champion version
        "monitor.verdict": "healthy",
        "monitor.live_rmse": "6.1",
        "monitor.live_interval": "[5.8, 6.4]",
        "monitor.live_previous": "5.9",
        "monitor.live_window": "2026-01-23..2026-01-23",
        "monitor.live_labels": "350",
        "monitor.checked_day": "2026-01-23",
    }
    for key, value in monitor.items():
        client.set_model_version_tag("tpl.a", version, key, value)
    _version(client, "tpl.b", tmp_path, {"decision": "kept", "reason": "unmonitored"})

    rows = _rows(client, "tpl.a", "tpl.b")
    page = render(list(rows.values()), generated_at="now")

    assert rows["tpl.a"]["champion"] == {"version": version, "metric": "rmse", "value": 5.5}
    assert rows["tpl.a"]["live"] == {
        "verdict": "healthy",
        "value": 6.1,
        "low": 5.8,
        "high": 6.4,
        "previous": 5.9,
        "window": "2026-01-23..2026-01-23",
        "labels": 350,
        "checked_day": "2026-01-23",
    }
    assert rows["tpl.b"]["live"] is None
    assert 'data-sort="live">Live</button></th>' in page
    assert '<td class="live" data-value="6.1" data-verdict="healthy" data-sort="6.1">6.1 [5.8, 6.4] ↑' in page
    assert "2026-01-23..2026-01-23, 350 labels" in page
    assert '<td class="live" data-value="" data-verdict="" data-sort="">—</td>' in page
