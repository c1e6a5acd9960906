"""The nightly drift review against real history files and a real MLflow store: q-values stored per city."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mlflow import MlflowClient
from scipy.stats import false_discovery_control

from airflow_ml.data.snapshot import write_json
from airflow_ml.ml import drift_history as store
from airflow_ml.ml.steps.drift_review_step import REVIEW_FILE, review_fleet
from airflow_ml.ml.steps.step_settings import DriftReviewSettings

TEMPLATE = "ride_duration"
NOW = dt.datetime(2026, 3, 3, tzinfo=dt.UTC)  # the day after the histories' newest records


@pytest.fixture
def client(tmp_path: Path) -> MlflowClient:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def city_history(
    root: Path, city: str, p_values: dict[str, float | None], *, run_id: str | None = None, record: bool = True
) -> Path:
    """A city whose newest snapshot has ``p_values`` per column (psi), with its drift.json when ``record``."""
    folder = root / "snapshots" / TEMPLATE / city / "night-2"
    folder.mkdir(parents=True)
    if record:
        (folder / "drift.json").write_text(json.dumps({"status": "passed"}), encoding="utf-8")
    rows = [
        {
            "snapshot_hash": f"{city}-2",
            "snapshot_uri": str(folder),
            "recorded_at": "2026-03-02T03:00:00",
            "column": column,
            "kind": "label" if column == "y" else "numeric",
            "statistic": "psi",
            "value": 0.1,
            "p_value": p,
            "basis": "fixed_thresholds" if p is None else "history",
            "drift_run_id": run_id,
        }
        for column, p in p_values.items()
    ]
    old = [{**row, "snapshot_hash": f"{city}-1", "recorded_at": "2026-03-01T03:00:00", "p_value": 1e-9} for row in rows]
    uri = store.history_uri(str(root), TEMPLATE, city)
    store.write_rows(uri, old, f"{city}-1")
    store.write_rows(uri, rows, f"{city}-2")
    return folder


def test_the_review_adjusts_every_citys_newest_p_values_together_and_stores_them(
    tmp_path: Path, client: MlflowClient
) -> None:
    run_id = client.create_run(client.create_experiment("ride_duration.oslo")).info.run_id
    client.set_terminated(run_id)
    oslo = city_history(tmp_path, "oslo", {"x1": 1e-7, "x2": 2e-7, "x3": 0.4, "y": 0.3}, run_id=run_id)
    city_history(tmp_path, "rome", {"x1": 0.5, "x2": 0.6, "x3": 0.7, "y": 0.8}, record=False)
    city_history(tmp_path, "lima", {"x1": None, "x2": None})
    city_history(tmp_path, "paris", {"x1": 1e-12})  # no longer a city of the template: left out
    settings = DriftReviewSettings(
        template=TEMPLATE, cities={c: f"{TEMPLATE}.{c}" for c in ("oslo", "rome", "lima")}, q=0.05, min_flagged=2
    )

    review = review_fleet(client, settings, data_root=str(tmp_path), now=NOW)

    ps = [1e-7, 2e-7, 0.4, 0.3, 0.5, 0.6, 0.7, 0.8]  # oslo's then rome's, the newest snapshot's only
    expected = false_discovery_control(ps, method="by")
    assert review["tests"] == 8
    assert np.allclose(list(review["cities"]["oslo"]["q_values"].values()), expected[:4])
    assert review["cities"]["oslo"]["flagged"] == pytest.approx({"x1": expected[0], "x2": expected[1]})
    assert review["cities"]["oslo"]["would_stop"] is True
    assert review["cities"]["rome"]["flagged"] == {}
    assert review["without_history"] == ["lima"]
    [problem] = review["problems"]  # rome's snapshot has no drift.json (say, pruned)
    assert problem.startswith(f"rome: drift.json of {tmp_path}/snapshots/{TEMPLATE}/rome/night-2 not updated")
    record: dict[str, Any] = json.loads((oslo / "drift.json").read_text())
    assert record["status"] == "passed"  # the run's own verdict stays
    assert record["fleet_review"]["flagged"] == review["cities"]["oslo"]["flagged"]
    assert record["fleet_review"]["tests"] == 8
    run = client.get_run(run_id)
    assert run.data.metrics["drift_q_fleet.x1.psi"] == pytest.approx(expected[0])
    assert run.data.tags["airflow_ml.drift_review_would_stop"] == "true"
    assert run.data.tags["airflow_ml.drift_review_flagged"].startswith("x1=")
    stored = json.loads((tmp_path / "drift_history" / TEMPLATE / REVIEW_FILE).read_text())
    assert stored["cities"].keys() == {"oslo", "rome"}
    assert review["left_out"] == {
        "paris": "not a reviewed city of the template (removed, or its drift calibration is off)"
    }


def test_a_template_without_history_reviews_nothing(tmp_path: Path) -> None:
    review = review_fleet(
        None, DriftReviewSettings(template=TEMPLATE, cities={"oslo": "m"}), data_root=str(tmp_path), now=NOW
    )

    assert (review["tests"], review["cities"], review["without_history"]) == (0, {}, ["oslo"])


def test_a_city_whose_record_cannot_be_written_is_a_problem_not_the_end_of_the_review(
    tmp_path: Path, client: MlflowClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refused credentials or a failed write (airflow-ml's own errors, not OSError) stop one city, not the review."""
    from airflow_ml.exceptions import DataError
    from airflow_ml.ml.steps import drift_review_step

    oslo = city_history(tmp_path, "oslo", {"x1": 1e-7, "x2": 0.4})
    city_history(tmp_path, "rome", {"x1": 0.5, "x2": 0.6})
    real_write = drift_review_step.write_text

    def write_text(uri: str, *args: Any, **kwargs: Any) -> Any:
        if "/oslo/" in uri:
            raise DataError(f"cannot write {uri}: access denied")
        return real_write(uri, *args, **kwargs)

    monkeypatch.setattr(drift_review_step, "write_text", write_text)
    settings = DriftReviewSettings(template=TEMPLATE, cities={c: f"{TEMPLATE}.{c}" for c in ("oslo", "rome")})

    review = review_fleet(client, settings, data_root=str(tmp_path), now=NOW)

    [problem] = review["problems"]
    assert problem.startswith(f"oslo: drift.json of {oslo} not updated")
    assert "access denied" in problem
    rome = json.loads((tmp_path / "snapshots" / TEMPLATE / "rome" / "night-2" / "drift.json").read_text())
    assert "fleet_review" in rome
    assert (tmp_path / "drift_history" / TEMPLATE / REVIEW_FILE).exists()


def test_flagged_predictions_alone_would_stop_a_run_as_the_runs_stop_rule_says(
    tmp_path: Path, client: MlflowClient
) -> None:
    folder = city_history(tmp_path, "oslo", {"x1": 0.5, "x2": 0.6})
    history = store.read_history(store.history_uri(str(tmp_path), TEMPLATE, "oslo"))
    newest = history[history["snapshot_hash"] == "oslo-2"].iloc[0].to_dict()
    prediction = {**newest, "column": "prediction", "kind": "prediction", "p_value": 1e-9}
    store.write_rows(
        store.history_uri(str(tmp_path), TEMPLATE, "oslo"),
        [*history[history["snapshot_hash"] == "oslo-2"].to_dict("records"), prediction],
        "oslo-2",
    )
    settings = DriftReviewSettings(template=TEMPLATE, cities={"oslo": f"{TEMPLATE}.oslo"}, min_flagged=2)

    entry = review_fleet(client, settings, data_root=str(tmp_path), now=NOW)["cities"]["oslo"]

    assert (entry["flagged"], entry["prediction_flagged"], entry["would_stop"]) == ({}, True, True)
    assert json.loads((folder / "drift.json").read_text())["fleet_review"]["would_stop"] is True


def test_each_city_gets_its_own_q_values_and_a_feature_its_smallest_flagged_q_value(tmp_path: Path) -> None:
    """Cities of one, four and two tests side by side: each city's q-values are its own tests', in order."""
    city_history(tmp_path, "lima", {"x1": 0.9})
    oslo = city_history(tmp_path, "oslo", {"x1": 1e-9, "x2": 0.5, "y": 1e-8})
    city_history(tmp_path, "rome", {"x1": 0.2, "x2": 0.3})
    uri = store.history_uri(str(tmp_path), TEMPLATE, "oslo")
    newest = store.latest_rows(store.read_history(uri)).to_dict("records")
    missing = {**newest[0], "statistic": "missing_rate_change", "p_value": 1e-10}  # x1 flagged twice
    store.write_rows(uri, [*newest, missing], "oslo-2")
    settings = DriftReviewSettings(
        template=TEMPLATE, cities={c: f"{TEMPLATE}.{c}" for c in ("lima", "oslo", "rome")}, q=0.05, min_flagged=2
    )

    review = review_fleet(None, settings, data_root=str(tmp_path), now=NOW)

    # By city, column, statistic: lima's x1; oslo's x1 (missing_rate_change, psi), x2, y; rome's x1, x2.
    q = false_discovery_control([0.9, 1e-10, 1e-9, 0.5, 1e-8, 0.2, 0.3], method="by")
    lima, oslo_entry, rome = (review["cities"][c] for c in ("lima", "oslo", "rome"))
    assert lima["q_values"] == pytest.approx({"x1.psi": q[0]})
    assert list(oslo_entry["q_values"]) == ["x1.missing_rate_change", "x1.psi", "x2.psi", "y.psi"]
    assert list(oslo_entry["q_values"].values()) == pytest.approx(q[1:5])
    assert rome["q_values"] == pytest.approx({"x1.psi": q[5], "x2.psi": q[6]})
    assert oslo_entry["flagged"] == pytest.approx({"x1": min(q[1], q[2])})  # y is the label: not a feature
    assert (oslo_entry["label_flagged"], oslo_entry["would_stop"]) == (True, True)
    assert (rome["flagged"], rome["label_flagged"], rome["would_stop"]) == ({}, False, False)
    assert json.loads((oslo / "drift.json").read_text())["fleet_review"]["q_values"] == oslo_entry["q_values"]


def test_a_record_the_drift_task_wrote_keeps_its_items_and_its_layout_with_this_nights_review(tmp_path: Path) -> None:
    """The record as the drift task writes it (write_json), with last night's review in the middle: replaced there,
    the drift task's items left as written, to the character (``0.30`` is not re-encoded as ``0.3``)."""
    folder = city_history(tmp_path, "oslo", {"x1": 1e-7, "x2": 0.4})
    record = {
        "status": "warned",
        "checks": [{"column": "x1", "psi": 0.3, "note": 'say "fleet_review": x'}],
        "fleet_review": {"reviewed_at": "2026-03-02T06:00:00+00:00", "q_values": {"x1.psi": 0.9}},
        "calibration": {"columns": [{"column": "x1", "p_value": 1e-7}, {"column": "x2", "p_value": 0.4}]},
    }
    uri = write_json(str(folder), "drift.json", record)
    Path(uri).write_text(Path(uri).read_text().replace('"psi": 0.3,', '"psi": 0.30,'), encoding="utf-8")
    settings = DriftReviewSettings(template=TEMPLATE, cities={"oslo": f"{TEMPLATE}.oslo"})

    review = review_fleet(None, settings, data_root=str(tmp_path), now=NOW)

    tonight = {"reviewed_at": NOW.isoformat(), "q": 0.05, "tests": 2, **review["cities"]["oslo"]}
    expected = json.dumps({**record, "fleet_review": tonight}, indent=1).replace('"psi": 0.3,', '"psi": 0.30,')
    assert (folder / "drift.json").read_text(encoding="utf-8") == expected


def test_a_corrupt_record_is_a_problem_of_its_city_and_is_left_as_it_was(tmp_path: Path) -> None:
    """A drift.json laid out as write_json lays it out but not JSON: reported, never rewritten as if whole."""
    folder = city_history(tmp_path, "oslo", {"x1": 1e-7, "x2": 0.4})
    broken = '{\n "status": "passed",\n "checks": [oops\n}'
    (folder / "drift.json").write_text(broken, encoding="utf-8")
    settings = DriftReviewSettings(template=TEMPLATE, cities={"oslo": f"{TEMPLATE}.oslo"})

    review = review_fleet(None, settings, data_root=str(tmp_path), now=NOW)

    [problem] = review["problems"]
    assert problem.startswith("oslo: drift.json of")
    assert "not updated" in problem
    assert (folder / "drift.json").read_text(encoding="utf-8") == broken


def test_a_review_key_spelt_with_an_escape_is_replaced_not_doubled(tmp_path: Path) -> None:
    folder = city_history(tmp_path, "oslo", {"x1": 1e-7, "x2": 0.4})
    (folder / "drift.json").write_text('{\n "status": "passed",\n "fleet\\u005freview": {}\n}', encoding="utf-8")
    settings = DriftReviewSettings(template=TEMPLATE, cities={"oslo": f"{TEMPLATE}.oslo"})

    review_fleet(None, settings, data_root=str(tmp_path), now=NOW)

    text = (folder / "drift.json").read_text(encoding="utf-8")
    pairs = json.loads(text, object_pairs_hook=lambda items: items)
    assert [key for key, _ in pairs] == ["status", "fleet_review"]
    assert dict(pairs)["fleet_review"] != [], "tonight's review replaced the old one"


def test_a_review_without_a_client_never_imports_mlflow(tmp_path: Path) -> None:
    """mlflow's import is most of the review's start-up: a review that writes no MLflow run does not pay it."""
    city_history(tmp_path, "oslo", {"x1": 1e-7, "x2": 0.4})
    code = (
        "import datetime as dt, json, sys\n"
        "from airflow_ml.ml.steps.drift_review_step import review_fleet\n"
        "from airflow_ml.ml.steps.step_settings import DriftReviewSettings\n"
        f"settings = DriftReviewSettings(template={TEMPLATE!r}, cities={{'oslo': '{TEMPLATE}.oslo'}})\n"
        f"review = review_fleet(None, settings, data_root={str(tmp_path)!r}, now=dt.datetime.fromisoformat("
        f"{NOW.isoformat()!r}))\n"
        "print(json.dumps({'cities': len(review['cities']), 'mlflow': 'mlflow' in sys.modules}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert json.loads(done.stdout.splitlines()[-1]) == {"cities": 1, "mlflow": False}
