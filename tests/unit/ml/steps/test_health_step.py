"""The health step with ``engine: dask``: the snapshot split on a real LocalCluster and only the sample gathered,
judged as the local path judges the same rows; the champion is loaded once on either engine; the cluster is not
reached when there is no champion to check (airflow_ml.ml.steps.health_step)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from airflow_ml.ml import model_registry as registry
from airflow_ml.ml.steps.health_step import ChampionUnchanged, health
from airflow_ml.ml.steps.step_settings import HealthSettings, SplitSettings
from airflow_ml.ml.steps.train_step import train_and_log
from tests.support.dask_clusters import cluster_client
from tests.support.mlflow_stores import CountingClient
from tests.support.training_data import late_trips, regression, snapshot

SPLIT = SplitSettings("pickup_at", 0.15, 0.15)
MODEL = "health_dask.lisbon"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A partitioned snapshot of six days and the champion trained on it (its first version)."""
    import dask

    from airflow_ml.data.dask_snapshot import take_partitioned_snapshot

    root = tmp_path_factory.mktemp("health")
    snapshot(late_trips(days=6, scale=0.3), root, "one")
    with dask.config.set(scheduler="synchronous"):
        parts = take_partitioned_snapshot(
            str(root / "raw"), str(root / "snapshots"), template="ride_duration", city="lisbon", run_id="parts"
        )
    uri = f"sqlite:///{root}/mlflow.db"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    result = train_and_log(
        client, parts, regression(num_boost_round=10), SPLIT, experiment=MODEL, artifact_root=f"file://{root}/a"
    )
    version = str(registry.register_challenger(client, MODEL, result["model_uri"], result["run_id"], {}).version)
    registry.promote(client, MODEL, version, {"decision": "promoted"})
    return {"client": client, "uri": parts.uri, "version": version}


@pytest.mark.slow
def test_on_dask_only_the_sample_is_gathered_and_judged_as_locally(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = HealthSettings(model_name=MODEL, split=SPLIT, sample_rows=150)
    local = health(world["client"], world["uri"], settings, version=world["version"], run_id="r1")

    def whole_snapshot(*_: Any, **__: Any) -> None:
        raise AssertionError("the health check on Dask read the snapshot into its process")

    monkeypatch.setattr("airflow_ml.ml.steps.health_step.read_snapshot", whole_snapshot)
    on_dask = dataclasses.replace(settings, engine="dask")
    found = health(
        world["client"], world["uri"], on_dask, version=world["version"], run_id="r1", dask_session=cluster_client
    )

    assert found.record["passed"] is True
    assert found.record["rows"] == local.record["rows"] == 150
    for key in ("mean", "reference_mean", "mean_shift", "q10_shift", "q50_shift", "q90_shift"):
        assert found.record[key] == pytest.approx(local.record[key], rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("engine", ["local", pytest.param("dask", marks=pytest.mark.slow)])
def test_the_champion_is_loaded_from_the_registry_once(world: dict[str, Any], engine: str) -> None:
    settings = HealthSettings(model_name=MODEL, split=SPLIT, sample_rows=50, engine=engine)
    counting = CountingClient(world["client"])

    found = health(counting, world["uri"], settings, version=world["version"], run_id="r4", dask_session=cluster_client)

    assert found.record["passed"] is True
    assert counting.model_loads() == 1


class MovesTheChampion(CountingClient):
    """A registry client that moves ``champion`` to ``to`` right after the model is first downloaded: a forced
    promotion or a rollback landing while the health check runs."""

    def __init__(self, client: MlflowClient, to: str) -> None:
        super().__init__(client)
        self.to, self.moved_from = to, None

    def download_artifacts(self, *args: Any, **kwargs: Any) -> Any:
        found = self.__getattr__("download_artifacts")(*args, **kwargs)
        if self.moved_from is None and not str(args[1]).startswith("lineage"):
            self.moved_from = str(registry.version_by_alias(self, MODEL, registry.CHAMPION).version)
            self.set_registered_model_alias(MODEL, registry.CHAMPION, self.to)
        return found


def test_a_champion_moved_during_the_check_is_neither_judged_nor_rolled_back(world: dict[str, Any]) -> None:
    client: MlflowClient = world["client"]
    champion = client.get_model_version(MODEL, world["version"])
    other = registry.register_challenger(client, MODEL, champion.source, champion.run_id, {})
    settings = HealthSettings(model_name=MODEL, split=SPLIT, sample_rows=50, max_mean_shift=0.0)  # would fail
    moving = MovesTheChampion(client, to=str(other.version))
    try:
        found = health(moving, world["uri"], settings, version=world["version"], run_id="r5")

        assert moving.moved_from == world["version"], "the alias moved while the check ran"
        assert found.record["passed"] is None
        assert found.record["skipped"].startswith(f"the champion moved to v{other.version} during the check")
        assert "rollback" not in found.record
        assert str(registry.version_by_alias(client, MODEL, registry.CHAMPION).version) == str(other.version)
        assert found.failure is None
    finally:
        client.set_registered_model_alias(MODEL, registry.CHAMPION, world["version"])


def test_the_cluster_is_not_reached_when_the_champion_did_not_move(world: dict[str, Any]) -> None:
    def unreachable() -> Any:
        raise AssertionError("a cluster was started for a run with nothing to check")

    settings = HealthSettings(model_name=MODEL, split=SPLIT, engine="dask")
    with pytest.raises(ChampionUnchanged, match="the champion did not move"):
        health(world["client"], world["uri"], settings, version="99", run_id="r2", dask_session=unreachable)


def test_engine_dask_without_a_session_is_refused_naming_it(world: dict[str, Any], tmp_path: Path) -> None:
    settings = HealthSettings(model_name=MODEL, split=SPLIT, engine="dask")
    with pytest.raises(ValueError, match=r"^training\.engine 'dask' needs dask_session"):
        health(world["client"], world["uri"], settings, version=world["version"], run_id="r3")


def test_the_local_check_reads_only_what_the_model_reads_and_judges_the_rows_of_the_whole_frame(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_ml.data.snapshot import load_manifest, read_snapshot
    from airflow_ml.ml.health import HealthThresholds, check_champion
    from airflow_ml.ml.steps import health_step

    settings = HealthSettings(model_name=MODEL, split=SPLIT, sample_rows=150)
    whole = health_step.snapshot_holdout(world["uri"], SPLIT)  # every column, as the step read it before
    thresholds = HealthThresholds(settings.max_mean_shift, settings.max_quantile_shift)
    expected = check_champion(world["client"], MODEL, whole, sample_rows=150, thresholds=thresholds)
    asked: list[list[str] | None] = []

    def reading(uri: str, columns: list[str] | None = None, **kwargs: Any) -> Any:
        asked.append(columns)
        return read_snapshot(uri, columns=columns, **kwargs)

    monkeypatch.setattr(health_step, "read_snapshot", reading)
    found = health(world["client"], world["uri"], settings, version=world["version"], run_id="r6")

    [columns] = asked
    assert columns is not None
    assert SPLIT.time_column in columns
    assert "duration_min" not in columns  # the target: the model does not read it
    assert set(columns) < set(load_manifest(world["uri"]).columns)
    assert found.record["passed"] is True
    for key in ("rows", "mean", "reference_mean", "mean_shift", "q10_shift", "q50_shift", "q90_shift"):
        assert found.record[key] == expected[key]  # the same rows sampled, the same predictions
