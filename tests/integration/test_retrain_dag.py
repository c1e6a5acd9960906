"""End to end with real Airflow (dag.test()), GX, LightGBM and MLflow: one city's life over several runs.

The runs build on each other, as nights do: a first run makes a champion; a crippled retrain must not
replace it; a broken batch whose files renamed a feature must stop at the snapshot, before any work; the
same batch with the column put back must stop at validation. Fixtures chain them so each test names what it
needs.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_ml.ml.markdown_cells import md_cell
from tests.support.airflow_runs import task_states
from tests.support.serving_models import champion_holdout
from tests.support.worlds import city_world

pytestmark = pytest.mark.integration
CITY = "lisbon"
MODEL = f"ride_duration.{CITY}"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, airflow_db: Path, dags_dir: Path) -> Iterator[dict[str, Any]]:
    """One city's templates, demo data and DAG, and a real MLflow store, wired through the environment."""
    with city_world(tmp_path_factory.mktemp("world"), dags_dir, CITY) as world:
        yield world


@contextlib.contextmanager
def _output_to(path: Path) -> Iterator[None]:
    """Send everything written to stdout and stderr (dag.test() prints the task logs there) to ``path``."""
    saved = os.dup(1), os.dup(2)
    with path.open("w", encoding="utf-8") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            log.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def _run(world: dict[str, Any], conf: dict[str, Any] | None = None, *, log: Path | None = None) -> dict[str, Any]:
    from airflow_ml.data.snapshot import snapshot_location

    with _output_to(log) if log else contextlib.nullcontext():
        run = world["build"]().test(run_conf=conf)
    folder = Path(snapshot_location(str(world["data_root"] / "snapshots"), "ride_duration", CITY, run.run_id))
    records: dict[str, Any] = {}
    for name in ("manifest", "validation", "validation_result", "decision"):
        path = folder / f"{name}.json"
        records[name] = json.loads(path.read_text()) if path.exists() else None
    report = folder / "validation_report.html"
    records["report"] = report.read_text() if report.exists() else None
    return {"state": str(run.state), "run_id": run.run_id, **records}


def _versions(client: Any) -> list[str]:
    return sorted(str(v.version) for v in client.search_model_versions(f"name='{MODEL}'"))


@pytest.fixture(scope="module")
def first_run(world: dict[str, Any]) -> dict[str, Any]:
    return _run(world)


@pytest.fixture(scope="module")
def crippled_run(world: dict[str, Any], first_run: dict[str, Any]) -> dict[str, Any]:
    # One boosting round: a model far worse than the champion.
    return _run(world, {"num_boost_round": 1, "num_leaves": 4, "reason": "integration test: crippled challenger"})


@pytest.fixture(scope="module")
def dry_run(world: dict[str, Any], crippled_run: dict[str, Any]) -> dict[str, Any]:
    return _run(world, {"promotion_mode": "dry_run", "num_boost_round": 1})


@pytest.fixture(scope="module")
def forced_run(world: dict[str, Any], dry_run: dict[str, Any]) -> dict[str, Any]:
    from airflow.sdk.exceptions import ParamValidationError

    versions = _versions(world["client"])
    # Refused when the run is created: nothing is trained for a promotion that could not happen.
    with pytest.raises(ParamValidationError) as unexplained:
        world["build"]().test(run_conf={"promotion_mode": "force", "num_boost_round": 1})
    trained_anyway = _versions(world["client"]) != versions
    forced = _run(world, {"promotion_mode": "force", "num_boost_round": 1, "reason": "integration test: forced"})
    return {**forced, "unexplained": str(unexplained.value), "trained_anyway": trained_anyway}


@pytest.fixture(scope="module")
def broken_run(world: dict[str, Any], forced_run: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Any:
    from airflow_ml.data.demo import write_demo_data

    champion_before = str(world["client"].get_model_version_by_alias(MODEL, "champion").version)
    versions_before = _versions(world["client"])
    files = write_demo_data(world["data_root"], cities=[CITY], batch="broken", scale=0.3)
    log = tmp_path_factory.mktemp("broken") / "tasks.log"
    run = _run(world, log=log)
    return {
        **run,
        "log": log.read_text(encoding="utf-8"),
        "files": files,
        "champion_before": champion_before,
        "versions_before": versions_before,
    }


@pytest.fixture(scope="module")
def invalid_run(world: dict[str, Any], broken_run: dict[str, Any]) -> dict[str, Any]:
    import pandas as pd

    # The broken batch with distance_km put back: its negative durations and null zones reach validation.
    champion_before = str(world["client"].get_model_version_by_alias(MODEL, "champion").version)
    versions_before = _versions(world["client"])
    for path in broken_run["files"]:
        frame = pd.read_parquet(path).rename(columns={"distance": "distance_km"})
        path.unlink()
        frame.to_parquet(path, index=False)
    return {**_run(world), "champion_before": champion_before, "versions_before": versions_before}


def test_first_run_registers_version_1_and_makes_it_champion(world: dict[str, Any], first_run: dict[str, Any]) -> None:
    client = world["client"]
    assert first_run["state"] == "success"
    assert first_run["validation"]["status"] in {"passed", "warned"}
    assert first_run["validation"]["evaluated"] == len(first_run["validation_result"]["results"])
    validation_run = client.get_run(first_run["validation"]["mlflow_run_id"])
    assert validation_run.data.tags["airflow_ml.snapshot_hash"] == first_run["manifest"]["content_hash"]
    assert validation_run.data.tags["airflow_ml.step"] == "validation"
    assert first_run["decision"]["decision"] == "promoted"
    assert "no champion" in first_run["decision"]["reason"]
    champion = client.get_model_version_by_alias(MODEL, "champion")
    assert str(champion.version) == "1"
    assert champion.tags["gate.decision"] == "promoted"
    assert champion.tags["airflow_ml.snapshot_hash"] == first_run["manifest"]["content_hash"]
    run = client.get_run(champion.run_id)
    assert run.data.tags["airflow_ml.snapshot_hash"] == first_run["manifest"]["content_hash"]
    assert run.data.params["snapshot_hash"] == first_run["manifest"]["content_hash"]
    assert run.data.metrics["holdout_rmse"] == pytest.approx(first_run["decision"]["challenger_score"])
    assert run.data.tags["airflow.dag_id"] == MODEL


def test_worse_challenger_leaves_the_champion_and_says_why(world: dict[str, Any], crippled_run: dict[str, Any]) -> None:
    client = world["client"]
    assert crippled_run["state"] == "success"
    decision = crippled_run["decision"]
    assert decision["decision"] == "kept"
    assert decision["baseline_version"] == "1"
    assert decision["challenger_score"] > decision["champion_score"]  # rmse: higher is worse
    assert "not better" in decision["reason"]
    assert decision["trigger_reason"] == "integration test: crippled challenger"
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "1"
    # Refused: v2 loses its challenger alias, so shadow scoring and the monitor never take it up.
    assert "challenger" not in client.get_registered_model(MODEL).aliases
    challenger = client.get_model_version(MODEL, "2")
    assert challenger.tags["gate.decision"] == "kept"
    # The reason is inert markdown in the description (a slice value could otherwise add links or paragraphs).
    assert challenger.description.startswith(f"**kept**: {md_cell(decision['reason'], limit=None)}")
    assert challenger.tags["gate.reason"] == decision["reason"]
    params = client.get_run(challenger.run_id).data.params
    assert (params["num_boost_round"], params["num_leaves"]) == ("1", "4")
    assert params["learning_rate"] == "0.08"  # not overridden: the template's value


def test_dry_run_records_the_decision_and_moves_nothing(world: dict[str, Any], dry_run: dict[str, Any]) -> None:
    client = world["client"]
    assert dry_run["state"] == "success"
    assert dry_run["decision"]["decision"] == "dry-run"
    assert dry_run["decision"]["mode"] == "dry_run"
    assert "would have kept the champion" in dry_run["decision"]["reason"]
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "1"
    version = dry_run["decision"]["challenger_version"]
    assert client.get_model_version(MODEL, version).tags["gate.decision"] == "dry-run"
    # Registered for the gate to score, and no alias moved: challenger never names a dry run's version.
    assert str(client.get_registered_model(MODEL).aliases.get("challenger")) != version


def test_force_needs_a_reason_then_promotes_and_keeps_the_previous_champion(
    world: dict[str, Any], forced_run: dict[str, Any]
) -> None:
    client = world["client"]
    assert "promotion_mode 'force' needs a reason: set 'reason'" in forced_run["unexplained"]
    assert not forced_run["trained_anyway"]
    assert forced_run["state"] == "success"
    decision = forced_run["decision"]
    assert decision["decision"] == "forced"
    assert "integration test: forced" in decision["reason"]
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == decision["challenger_version"]
    assert str(client.get_model_version_by_alias(MODEL, "previous-champion").version) == "1"


def test_a_batch_whose_files_renamed_a_feature_stops_at_the_snapshot_and_keeps_the_champion(
    world: dict[str, Any], broken_run: dict[str, Any]
) -> None:
    # Before the per-file contract, the renamed column's rows became nulls and only validation stopped them.
    assert broken_run["state"] == "failed"
    states = task_states(MODEL, broken_run["run_id"])
    assert states["snapshot"] == "failed"
    assert {states[t] for t in ("validate", "train", "register", "gate")} == {"upstream_failed"}
    assert broken_run["manifest"] is None  # no snapshot was written
    assert broken_run["validation"] is None
    assert broken_run["decision"] is None
    assert "column 'distance_km' is missing from 3 of the " in broken_run["log"]
    for path in broken_run["files"]:
        assert repr(str(path)) in broken_run["log"]
    assert "no snapshot was written; the run stops here" in broken_run["log"]
    assert _versions(world["client"]) == broken_run["versions_before"]
    assert str(world["client"].get_model_version_by_alias(MODEL, "champion").version) == broken_run["champion_before"]


def test_invalid_batch_fails_validation_registers_nothing_and_keeps_the_champion(
    world: dict[str, Any], invalid_run: dict[str, Any]
) -> None:
    client = world["client"]
    assert invalid_run["state"] == "failed"
    assert invalid_run["decision"] is None
    verdict = invalid_run["validation"]
    assert verdict["status"] == "failed"
    failed_columns = {f["column"] for f in verdict["failures"]}
    assert "duration_min" in failed_columns
    assert verdict["suite_file"].endswith("expectations/ride_trips.json")
    assert all(f["source"].startswith(verdict["suite_file"]) for f in verdict["failures"])
    assert _versions(client) == invalid_run["versions_before"]
    # The full GX result and a readable report, beside the snapshot and in a validation run in MLflow.
    failed_in_result = [r for r in invalid_run["validation_result"]["results"] if not r["success"]]
    assert len(failed_in_result) == len(verdict["failures"])
    assert "FAILED" in invalid_run["report"]
    assert "duration_min" in invalid_run["report"]
    run = client.get_run(verdict["mlflow_run_id"])
    assert run.data.tags["airflow_ml.validation"] == "failed"
    assert run.data.params["validation_failed_errors"] == str(verdict["failed_errors"])  # a count: a param
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "validation")}
    assert artifacts == {
        f"validation/{n}" for n in ("validation.json", "validation_result.json", "validation_report.html")
    }
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == invalid_run["champion_before"]


def test_champion_served_by_alias_predicts_what_training_predicted(
    world: dict[str, Any], first_run: dict[str, Any], tmp_path: Path
) -> None:
    import numpy as np

    # Serving exactly as a consumer would: the registry URI with the alias, on raw rows.
    holdout, served = champion_holdout(world["client"], world["store"]["tracking_uri"], MODEL, tmp_path)
    assert len(served) == len(holdout) > 100
    np.testing.assert_array_equal(np.asarray(served), holdout["prediction"].to_numpy())


def test_invalid_trigger_params_are_refused_before_any_task_runs(
    world: dict[str, Any], first_run: dict[str, Any]
) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    client = world["client"]
    versions_before = _versions(client)
    snapshots_before = sorted((world["data_root"] / "snapshots" / "ride_duration" / CITY).iterdir())
    for conf, named in (({"num_boost_round": 0}, "num_boost_round"), ({"learning_rate": "fast"}, "learning_rate")):
        with pytest.raises(ParamValidationError, match=named):
            world["build"]().test(run_conf=conf)
    assert sorted((world["data_root"] / "snapshots" / "ride_duration" / CITY).iterdir()) == snapshots_before
    assert _versions(client) == versions_before
