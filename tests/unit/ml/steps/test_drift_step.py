"""The drift step's core against a real MLflow store: the champion's lineage, skips that say why, the MLflow run."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from airflow_ml.data.snapshot import Manifest, take_snapshot
from airflow_ml.ml.lineage import this_citys_champion, training_snapshot
from airflow_ml.ml.steps.drift_step import NO_CHAMPION, check_drift
from airflow_ml.ml.steps.step_settings import DriftSettings

THRESHOLDS = {"psi": {"warn": 0.1, "error": 0.25}, "missing_rate_change": {"warn": 0.05, "error": 0.2}}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One real SQLite store for the module (creating one costs seconds); each test has its own model."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow')}/mlflow.db"


@pytest.fixture
def client(store: str) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=store, registry_uri=store)


@pytest.fixture
def model(request: pytest.FixtureRequest) -> str:
    """A registered-model name of this test's own."""
    return f"ride_duration.{request.node.name.removeprefix('test_')[:40]}"


def snapshot(tmp_path: Path, run_id: str, *, scale: float = 1.0) -> Manifest:
    rng = np.random.default_rng(0)
    partition = tmp_path / "raw" / run_id / "date=2026-01-05"
    partition.mkdir(parents=True)
    x = rng.lognormal(1, 0.5, 2000) * scale
    pd.DataFrame({"x": x, "y": x * 2 + rng.normal(0, 1, 2000)}).to_parquet(partition / "part.parquet")
    return take_snapshot(
        str(partition.parent), str(tmp_path / "snapshots"), template="ride_duration", city="oslo", run_id=run_id
    )


def make_champion(client: Any, model: str, tmp_path: Path, tags: dict[str, str]) -> str:
    client.create_registered_model(model)
    run_id = client.create_run(client.create_experiment(f"{model}.trained"), tags=tags).info.run_id
    source = tmp_path / "model"
    source.mkdir()
    version = client.create_model_version(model, str(source), run_id=run_id, tags=tags)
    client.set_registered_model_alias(model, "champion", version.version)
    return str(version.version)


def check(client: Any, model: str, manifest: Manifest) -> dict[str, Any]:
    return check_drift(
        client, manifest, DriftSettings(model_name=model, features=["x"], target="y", thresholds=THRESHOLDS)
    )


def test_no_champion_skips_with_the_first_run_reason(client: Any, model: str, tmp_path: Path) -> None:
    record = check(client, model, snapshot(tmp_path, "now"))

    assert (record["status"], record["reason"]) == ("skipped", NO_CHAMPION)
    assert "first run" in record["reason"]
    assert this_citys_champion(client, model) is None
    assert client.get_experiment_by_name(model) is None  # nothing logged


def test_a_champion_without_lineage_is_skipped_and_says_so(client: Any, model: str, tmp_path: Path) -> None:
    make_champion(client, model, tmp_path, tags={})

    record = check(client, model, snapshot(tmp_path, "now"))

    assert record["status"] == "skipped"
    assert "carries no snapshot lineage" in record["reason"]


def test_an_unreadable_champion_snapshot_is_skipped_with_its_uri(client: Any, model: str, tmp_path: Path) -> None:
    old = snapshot(tmp_path, "old")
    make_champion(client, model, tmp_path, tags={"airflow_ml.snapshot_uri": old.uri})
    shutil.rmtree(old.uri.removeprefix("file://"))

    record = check(client, model, snapshot(tmp_path, "now"))

    assert record["status"] == "skipped"
    assert record["champion_version"] == "1"
    assert old.uri in record["reason"]
    assert "cannot be read" in record["reason"]


def test_lineage_falls_back_to_the_training_runs_tag(client: Any, model: str, tmp_path: Path) -> None:
    old = snapshot(tmp_path, "old")
    version = make_champion(client, model, tmp_path, tags={})
    run_id = client.get_model_version(model, version).run_id
    client.set_tag(run_id, "airflow_ml.snapshot_uri", old.uri)

    champion = this_citys_champion(client, model)
    assert champion is not None
    assert training_snapshot(client, champion) == old.uri


def test_a_shift_is_logged_as_a_drift_run_with_metrics_tags_and_the_record(
    client: Any, model: str, tmp_path: Path
) -> None:
    old = snapshot(tmp_path, "old")
    make_champion(client, model, tmp_path, tags={"airflow_ml.snapshot_uri": old.uri})
    now = snapshot(tmp_path, "now", scale=3.0)

    record = check(client, model, now)

    assert record["status"] == "failed"
    assert record["breaches"][0] == "x.psi"
    # The champion here has no model to load: its predictions are not compared, and the record says why.
    prediction = next(c for c in record["checks"] if c["column"] == "prediction")
    assert prediction["value"] is None
    assert prediction["note"].startswith("the champion's predictions could not be made")
    run = client.get_run(record["mlflow_run_id"])
    assert run.info.run_name == "drift"
    assert run.data.tags["airflow_ml.drift"] == "failed"
    assert run.data.tags["airflow_ml.champion_snapshot_hash"] == old.content_hash
    assert run.data.tags["airflow_ml.snapshot_hash"] == now.content_hash
    assert run.data.metrics["drift.x.psi"] > 1
    assert run.info.status == "FINISHED"
    logged = Path(client.download_artifacts(run.info.run_id, "drift.json", str(tmp_path / "dl")))
    assert '"status": "failed"' in logged.read_text()
    assert record["charts"] == ["charts/distributions.png"]
    assert [a.path for a in client.list_artifacts(run.info.run_id, "charts")] == record["charts"]


def nightly(tmp_path: Path, night: int, *, scale: float) -> Manifest:
    """A snapshot of one day's partition; x is multiplied by ``scale``, the label does not depend on x."""
    rng = np.random.default_rng(night)
    partition = tmp_path / "raw" / f"n{night}" / f"date=2026-01-{night + 5:02d}"
    partition.mkdir(parents=True)
    pd.DataFrame({"x": rng.lognormal(1, 0.5, 2000) * scale, "y": rng.normal(0, 1, 2000)}).to_parquet(
        partition / "part.parquet"
    )
    return take_snapshot(
        str(partition.parent), str(tmp_path / "snapshots"), template="ride_duration", city="oslo", run_id=f"n{night}"
    )


def test_a_feature_over_its_fixed_limit_but_ordinary_for_the_citys_history_no_longer_stops_the_run(
    client: Any, model: str, tmp_path: Path
) -> None:
    from airflow_ml.ml import drift_history

    old = nightly(tmp_path, 0, scale=1.0)
    make_champion(client, model, tmp_path, tags={"airflow_ml.snapshot_uri": old.uri})
    settings = DriftSettings(
        model_name=model, features=["x"], target="y", thresholds=THRESHOLDS, calibration={"min_history": 5}
    )

    records = [check_drift(client, nightly(tmp_path, night, scale=3.0), settings) for night in range(1, 9)]

    first, last = records[0], records[-1]
    # x's PSI against the champion's data is far above its error limit every night.
    assert all(r["status_fixed_thresholds"] == "failed" for r in records)
    # Without history (the first night) the fixed threshold decides, and the record says so.
    assert first["status"] == "failed"
    assert "fixed threshold, not calibrated: no value today (first snapshot" in first["stopped_by"][0]
    assert {c["basis"] for c in first["calibration"]["columns"]} == {"fixed_thresholds"}
    # With 6 past values, x's nightly change is ordinary for this city: the run goes on, with a warning.
    assert last["status"] == "warned"
    assert last["stopped_by"] == []
    assert {c["basis"] for c in last["calibration"]["columns"]} == {"history"}
    run = client.get_run(last["mlflow_run_id"])
    assert run.data.tags["airflow_ml.drift"] == "warned"
    assert run.data.tags["airflow_ml.drift_fixed_thresholds"] == "failed"
    assert {"drift_history.x.psi", "drift_p.x.psi", "drift_q.x.psi"} <= set(run.data.metrics)
    history = drift_history.read_history(drift_history.history_uri(str(tmp_path), "ride_duration", "oslo"))
    assert history["snapshot_hash"].nunique() == 8
    assert set(drift_history.latest_rows(history)["drift_run_id"]) == {last["mlflow_run_id"]}


def test_calibration_off_keeps_no_history(client: Any, model: str, tmp_path: Path) -> None:
    old = nightly(tmp_path, 0, scale=1.0)
    make_champion(client, model, tmp_path, tags={"airflow_ml.snapshot_uri": old.uri})
    settings = DriftSettings(
        model_name=model, features=["x"], target="y", thresholds=THRESHOLDS, calibration={"enabled": False}
    )

    record = check_drift(client, nightly(tmp_path, 1, scale=3.0), settings)

    assert record["status"] == "failed"
    assert "calibration" not in record
    assert not (tmp_path / "drift_history").exists()


def test_a_previous_snapshot_the_champion_cannot_read_leaves_a_note_not_a_failed_drift_task(
    client: Any, model: str, tmp_path: Path
) -> None:
    """Yesterday's integer column gained a null (read as float): MLflow refuses it, the drift task goes on."""
    from airflow_ml.ml import model_registry as registry
    from airflow_ml.ml.steps.step_settings import SplitSettings
    from airflow_ml.ml.steps.train_step import train_and_log
    from tests.support.training_data import FEATURES, late_trips, regression
    from tests.support.training_data import snapshot as trips_snapshot

    trips = late_trips(days=4, scale=0.3)
    trained_on: Any = trips_snapshot(trips, tmp_path, "r1")
    spec, split = regression(num_boost_round=5), SplitSettings("pickup_at")
    result = train_and_log(client, trained_on, spec, split, experiment=model, artifact_root=f"file://{tmp_path}/a")
    version = registry.register_challenger(
        client, model, result["model_uri"], result["run_id"], {"airflow_ml.snapshot_uri": trained_on.uri}
    )
    client.set_registered_model_alias(model, "champion", version.version)
    settings = DriftSettings(
        model_name=model,
        features=FEATURES,
        target="duration_min",
        categorical_features=["pickup_zone"],
        thresholds=THRESHOLDS,
        calibration={"min_history": 5},
    )
    broken = trips.assign(pickup_hour=trips["pickup_hour"].astype("float64"))
    broken.loc[0, "pickup_hour"] = np.nan
    check_drift(client, trips_snapshot(broken, tmp_path, "r2"), settings)  # yesterday's run

    record = check_drift(client, trips_snapshot(trips, tmp_path, "r3"), settings)

    prediction = next(c for c in record["checks"] if c["column"] == "prediction")
    assert prediction["value"] is not None  # against the champion's own data: measured
    assert "the predictions' drift since the previous snapshot could not be computed" in prediction["note"]


def test_the_champions_predictions_are_kept_beside_each_snapshot_and_a_rerun_records_the_same_without_the_model(
    client: Any, model: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Night 1 keeps the champion's predictions on its training snapshot and on the night's whole snapshot (the
    previous snapshot of night 2); a rerun of night 2 finds all three, predicting only its compared rows, and
    records the same."""
    from airflow_ml.ml import model_registry as registry
    from airflow_ml.ml.champion_predictions import PREFIX
    from airflow_ml.ml.steps.step_settings import SplitSettings
    from airflow_ml.ml.steps.train_step import train_and_log
    from tests.support.training_data import FEATURES, late_trips, regression
    from tests.support.training_data import snapshot as trips_snapshot

    trips = late_trips(days=10, scale=0.3)
    days = trips["pickup_at"].dt.normalize()
    trained_on: Any = trips_snapshot(trips[days < days.min() + pd.Timedelta(days=8)], tmp_path, "r1")
    result = train_and_log(
        client, trained_on, regression(num_boost_round=5), SplitSettings("pickup_at"), experiment=model,
        artifact_root=f"file://{tmp_path}/a",
    )  # fmt: skip
    version = registry.register_challenger(
        client, model, result["model_uri"], result["run_id"], {"airflow_ml.snapshot_uri": trained_on.uri}
    )
    client.set_registered_model_alias(model, "champion", version.version)
    settings = DriftSettings(
        model_name=model, features=FEATURES, target="duration_min", categorical_features=["pickup_zone"],
        thresholds=THRESHOLDS, time_column="pickup_at", min_new_days=1, min_new_rows=10,
    )  # fmt: skip
    night1: Any = trips_snapshot(trips[days < days.min() + pd.Timedelta(days=9)], tmp_path, "r2")
    check_drift(client, night1, settings)
    night2: Any = trips_snapshot(trips, tmp_path, "r3")
    loads: list[str] = []
    real_load = registry.load_version

    def counted(*args: Any) -> Any:
        loads.append("loaded")
        return real_load(*args)

    monkeypatch.setattr(registry, "load_version", counted)

    def kept(manifest: Any) -> list[Path]:
        return list(Path(manifest.uri.removeprefix("file://")).glob(f"{PREFIX}*.npy"))

    assert (len(kept(trained_on)), len(kept(night1))) == (1, 1)  # night 1 kept both
    from airflow_ml.data import snapshot as snapshots

    asked: list[str] = []

    def spy(uri: str, columns: Any = None, **options: Any) -> Any:
        asked.append(uri)
        return snapshots.read_snapshot(uri, columns, **options)

    for module in ("drift_step", "drift_calibration_step"):
        monkeypatch.setattr(f"airflow_ml.ml.steps.{module}.read_snapshot", spy)
    first = check_drift(client, night2, settings)
    assert asked.count(night2.uri) == 1  # one read for the calibration and the champion comparison
    assert loads == ["loaded"]  # only night 2's own rows were predicted
    assert len(kept(night2)) == 1
    mtimes = {path: path.stat().st_mtime_ns for path in [*kept(trained_on), *kept(night1), *kept(night2)]}
    rerun = check_drift(client, night2, settings)
    # The rerun found every whole snapshot's predictions kept (none written again); the compared new rows are
    # predicted on their own (never sliced), so the model is loaded once for them.
    assert {path: path.stat().st_mtime_ns for path in mtimes} == mtimes
    assert loads == ["loaded", "loaded"]
    for path in [*kept(trained_on), *kept(night1), *kept(night2)]:
        path.unlink()
    fresh = check_drift(client, night2, settings)
    assert loads == ["loaded", "loaded", "loaded"]

    def prediction(record: dict[str, Any]) -> tuple[Any, ...]:
        check = next(c for c in record["checks"] if c["column"] == "prediction")
        since = next(c for c in record["calibration"]["columns"] if c["column"] == "prediction")
        return check["value"], check["note"], since["value"], since["current_n"]

    assert first["compared"]["mode"] == "new_rows"
    assert first["calibration"]["previous_snapshot"]["hash"] == night1.content_hash
    assert prediction(first)[0] is not None
    assert prediction(first)[2] is not None
    assert prediction(first) == prediction(rerun) == prediction(fresh)  # exactly the same values
    assert [c["value"] for c in first["checks"]] == [c["value"] for c in fresh["checks"]]


def test_a_chart_that_fails_leaves_the_drift_run_finished(
    client: Any, model: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from airflow_ml.ml.charts import chart_drawing

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("matplotlib broke")

    monkeypatch.setattr(chart_drawing, "draw_drift", broken)
    old = snapshot(tmp_path, "old")
    make_champion(client, model, tmp_path, tags={"airflow_ml.snapshot_uri": old.uri})

    record = check(client, model, snapshot(tmp_path, "now", scale=3.0))

    assert record["status"] == "failed"  # the drift verdict, not the chart's
    assert record["charts"] == []
    assert client.get_run(record["mlflow_run_id"]).info.status == "FINISHED"
    assert "chart charts/distributions.png was not drawn: RuntimeError: matplotlib broke" in caplog.text


def twins(tmp_path: Path, run_id: str, *, scale: float = 1.0) -> tuple[Manifest, Manifest]:
    """Two days of rows (and a wide column drift never reads) as a one-file snapshot and a partitioned one."""
    import dask

    from airflow_ml.data.dask_snapshot import take_partitioned_snapshot

    rng = np.random.default_rng(1)
    source = tmp_path / "raw" / run_id
    for day in ("2026-01-05", "2026-01-06"):
        (source / f"date={day}").mkdir(parents=True)
        x = rng.lognormal(1, 0.5, 1000) * scale
        rows = pd.DataFrame({"x": x, "y": x * 2 + rng.normal(0, 1, 1000), "blob": ["z" * 50] * 1000})
        rows.to_parquet(source / f"date={day}" / "part.parquet")
    one = take_snapshot(str(source), str(tmp_path / "snapshots"), template="ride_duration", city="oslo", run_id=run_id)
    with dask.config.set(scheduler="synchronous"):
        parts = take_partitioned_snapshot(
            str(source), str(tmp_path / "snapshots"), template="ride_duration", city="oslo", run_id=f"{run_id}-parts"
        )
    return one, parts


def test_partitioned_snapshots_are_compared_as_their_one_file_twins_reading_only_the_columns_compared(
    client: Any, store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_ml.data import snapshot as snapshots

    old_one, old_parts = twins(tmp_path, "old")
    now_one, now_parts = twins(tmp_path, "now", scale=1.3)
    assert len(now_parts.parts) == 2
    records = {}
    for kind, old, now in (("one", old_one, now_one), ("parts", old_parts, now_parts)):
        model = f"ride_duration.twin_{kind}"
        (tmp_path / kind).mkdir()
        make_champion(client, model, tmp_path / kind, tags={"airflow_ml.snapshot_uri": old.uri})
        asked: list[Any] = []

        def spy(uri: str, columns: Any = None, *, asked: list[Any] = asked, **options: Any) -> Any:
            asked.append(columns)
            return snapshots.read_snapshot(uri, columns, **options)

        monkeypatch.setattr("airflow_ml.ml.steps.drift_step.read_snapshot", spy)
        records[kind] = check(client, model, now)
        assert asked == [["x", "y"], ["x", "y"]]  # the champion's snapshot, then this run's: never "blob"

    one, parts = records["one"], records["parts"]
    assert parts["status"] == one["status"] != "skipped"
    assert parts["snapshot_hash"] == now_parts.content_hash
    assert [(c["column"], c["statistic"], c["value"]) for c in parts["checks"]] == [
        (c["column"], c["statistic"], c["value"]) for c in one["checks"]
    ]


class _Recorded:
    """A stand-in for ChampionPredictions that records what it is asked: which frames, which whole snapshots."""

    def __init__(self) -> None:
        self.frames: list[pd.DataFrame] = []
        self.wholes: list[str] = []

    def whole(self, manifest: Any, frame: pd.DataFrame) -> np.ndarray:
        self.wholes.append(manifest)
        return np.arange(len(frame), dtype=float)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        self.frames.append(frame)
        return np.full(len(frame), -1.0)


def test_compared_rows_are_predicted_on_their_own_never_sliced_from_the_whole_snapshot() -> None:
    # Serving codes a float categorical column from every value of the frame it is given (a column of whole
    # numbers reads as integers): a slice of the whole snapshot's predictions can differ from these rows' own.
    from airflow_ml.ml.steps.drift_step import _predicted

    snapshot = pd.DataFrame({"zone": [1.0, 2.0, 3.5, 1.0]})
    compared = np.array([True, True, False, False])
    recorded = _Recorded()

    values = _predicted(recorded, ("snap", snapshot), compared, snapshot[compared], whole=True)  # type: ignore[arg-type]

    assert values.tolist() == [-1.0, -1.0]  # these rows' own prediction
    assert [len(f) for f in recorded.frames] == [2]
    assert recorded.wholes == ["snap"]  # still made and kept for tomorrow's run
    every = _predicted(recorded, ("snap", snapshot), None, snapshot, whole=False)  # type: ignore[arg-type]
    assert every.tolist() == [0.0, 1.0, 2.0, 3.0]  # all rows compared: the whole snapshot's, kept
