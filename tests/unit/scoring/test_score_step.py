"""The batch scoring step (airflow_ml.scoring.score_step) on a real MLflow registry with real LightGBM models."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from airflow_ml.data.prediction_log import PART_FILE, partition_location, read_predictions
from airflow_ml.ml import kill_switch
from airflow_ml.ml.steps.step_settings import ScoringSettings
from airflow_ml.scoring import score_step
from tests.support.scoring import DAY, ModelShelf
from tests.support.training_data import FEATURES

TEMPLATE = "ride_duration"
WHEN = dt.datetime(2026, 1, 12, tzinfo=dt.UTC)


def settings(city: str, **changes: Any) -> ScoringSettings:
    base = ScoringSettings(
        template=TEMPLATE,
        city=city,
        model_name=f"{TEMPLATE}.{city}",
        source="{data_root}/raw/trips/{city}",
        features=FEATURES,
        keep_columns=["pickup_zone"],
    )
    return dataclasses.replace(base, **changes)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """lisbon: champion v1, challenger v2; the global parent: champion v1; sao_paulo: nothing of its own; demo data."""
    from mlflow import MlflowClient

    from airflow_ml.data.demo import write_demo_data

    root = tmp_path_factory.mktemp("scoring")
    uri = f"sqlite:///{root}/mlflow.db"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    shelf = ModelShelf(client, f"file://{root}/artifacts")
    shelf.register(f"{TEMPLATE}.lisbon", 5, alias="champion")
    shelf.register(f"{TEMPLATE}.lisbon", 30, alias="challenger")
    shelf.register(f"{TEMPLATE}.global", 30, alias="champion")
    write_demo_data(root / "data", cities=["lisbon", "sao_paulo"], batch="initial", scale=0.05)
    return {"client": client, "data_root": str(root / "data")}


def run(world: dict[str, Any], config: ScoringSettings, day: dt.date = DAY, **kwargs: Any) -> score_step.Scored:
    resolved = score_step.resolve(world["client"], config)
    return score_step.score(
        world["client"],
        config,
        resolved,
        day=day,
        run_id="scheduled__2026-01-12T00:00:00+00:00",
        scored_at=WHEN,
        data_root=world["data_root"],
        **kwargs,
    )


def test_the_champion_resolves_to_one_version_and_the_challenger_to_shadow(world: dict[str, Any]) -> None:
    resolved = score_step.resolve(world["client"], settings("lisbon"))

    assert resolved["status"] == "serve"
    assert (resolved["model_name"], resolved["version"], resolved["source"]) == (f"{TEMPLATE}.lisbon", "1", "own")
    assert (resolved["challenger_name"], resolved["challenger_version"]) == (f"{TEMPLATE}.lisbon", "2")
    assert score_step.resolve(world["client"], settings("lisbon", shadow=False))["challenger_version"] is None


def test_a_city_without_a_model_is_served_by_its_parent_or_not_scored(world: dict[str, Any]) -> None:
    parent = score_step.resolve(world["client"], settings("sao_paulo", parent_model=f"{TEMPLATE}.global"))
    alone = score_step.resolve(world["client"], settings("sao_paulo"))

    assert (parent["status"], parent["model_name"], parent["version"]) == ("serve", f"{TEMPLATE}.global", "1")
    assert parent["source"] == "parent"
    assert parent["challenger_version"] is None  # sao_paulo has no challenger of its own
    assert alone["status"] == "no_model"
    assert alone["version"] is None
    assert "no registered model yet" in alone["reason"]
    assert "fallback parent" in alone["reason"]


def test_the_kill_switch_resolves_to_nothing_with_the_reason(world: dict[str, Any]) -> None:
    client = world["client"]
    kill_switch.disable(client, f"{TEMPLATE}.lisbon", reason="bad sensor data", by="oncall")
    try:
        resolved = score_step.resolve(client, settings("lisbon"))
    finally:
        kill_switch.enable(client, f"{TEMPLATE}.lisbon", by="oncall")

    assert resolved["status"] == "disabled"
    assert "bad sensor data" in resolved["reason"]
    assert "oncall" in resolved["reason"]
    with pytest.raises(ValueError, match="bad sensor data"):
        score_step.score(
            client, settings("lisbon"), resolved, day=DAY, run_id="r", scored_at=WHEN, data_root=world["data_root"]
        )


def test_a_kill_switch_set_after_the_resolve_stops_a_retried_score(world: dict[str, Any]) -> None:
    client = world["client"]
    resolved = score_step.resolve(client, settings("lisbon"))
    assert resolved["status"] == "serve"
    kill_switch.disable(client, f"{TEMPLATE}.lisbon", reason="labels show a bias", by="oncall")
    try:
        with pytest.raises(score_step.ScoringDisabled, match="labels show a bias"):
            score_step.score(
                client, settings("lisbon"), resolved, day=DAY, run_id="r", scored_at=WHEN, data_root=world["data_root"]
            )
    finally:
        kill_switch.enable(client, f"{TEMPLATE}.lisbon", by="oncall")


def test_a_disabled_parent_scores_none_of_the_cities_it_serves(world: dict[str, Any]) -> None:
    client = world["client"]
    kill_switch.disable(client, f"{TEMPLATE}.global", reason="trained on a broken week", by="oncall")
    try:
        resolved = score_step.resolve(client, settings("sao_paulo", parent_model=f"{TEMPLATE}.global"))
        own = score_step.resolve(client, settings("lisbon", parent_model=f"{TEMPLATE}.global"))
    finally:
        kill_switch.enable(client, f"{TEMPLATE}.global", by="oncall")

    assert resolved["status"] == "disabled"
    assert "served by its parent" in resolved["reason"]
    assert "trained on a broken week" in resolved["reason"]
    assert own["status"] == "serve"  # a city with its own champion does not depend on the parent


def test_the_day_is_scored_by_the_resolved_version_and_the_challenger_into_the_shadow_log(
    world: dict[str, Any],
) -> None:
    scored = run(world, settings("lisbon"))

    payload = scored.payload
    log = read_predictions(world["data_root"], TEMPLATE, "lisbon", DAY, DAY)
    shadow = read_predictions(world["data_root"], TEMPLATE, "lisbon", DAY, DAY, shadow=True)
    assert (payload["status"], payload["model_version"], payload["shadow_version"]) == ("scored", "1", "2")
    assert payload["row_count"] == len(log) > 0
    assert set(log["model_version"]) == {"1"}
    assert set(shadow["model_version"]) == {"2"}
    assert list(shadow["prediction_id"]) == list(log["prediction_id"])
    assert not (shadow["prediction"] == log["prediction"]).all()
    assert "pickup_zone" in log.columns
    assert set(log["scored_at"]) == {pd.Timestamp(WHEN)}
    assert payload["input_hash"] == log["input_hash"].iloc[0]
    assert len(scored.logged_rows()) == len(log)


def test_a_rerun_of_the_day_writes_the_same_bytes(world: dict[str, Any]) -> None:
    part = Path(partition_location(world["data_root"], TEMPLATE, "lisbon", DAY)) / PART_FILE

    run(world, settings("lisbon"))
    first = part.read_bytes()
    run(world, settings("lisbon"))

    assert part.read_bytes() == first


def test_the_input_hash_is_the_sha256_of_the_files_as_stored(world: dict[str, Any], tmp_path: Path) -> None:
    """The documented hash (each file's name, size and bytes, in name order); other bytes, another hash."""
    import hashlib
    import shutil

    source = Path(world["data_root"]) / "raw" / "trips" / "lisbon" / f"date={DAY.isoformat()}"
    copy = tmp_path / "raw" / "trips" / "lisbon"
    shutil.copytree(source, copy / source.name)
    digest = hashlib.sha256()
    for file in sorted(source.iterdir()):
        data = file.read_bytes()
        digest.update(f"{file.name}:{len(data)}:".encode() + data)

    first = run({**world, "data_root": str(tmp_path)}, settings("lisbon", shadow=False)).payload["input_hash"]
    for file in (copy / source.name).iterdir():  # the same rows, written again with another codec
        pd.read_parquet(file).to_parquet(file, compression="gzip", index=False)
    again = run({**world, "data_root": str(tmp_path)}, settings("lisbon", shadow=False)).payload["input_hash"]

    assert first == digest.hexdigest()
    assert again != first


def test_a_missing_partition_names_its_uri_and_the_fix(world: dict[str, Any]) -> None:
    day = dt.date(2030, 1, 1)

    with pytest.raises(score_step.MissingPartition) as caught:
        run(world, settings("lisbon"), day=day)

    message = str(caught.value)
    assert f"raw/trips/lisbon/date={day.isoformat()}" in message
    assert "clear the score task" in message
    assert "scoring.source" in message


def test_a_missing_source_names_the_setting(world: dict[str, Any]) -> None:
    with pytest.raises(score_step.DataError, match=r"scoring.source of ride_duration.lisbon: data source .* does not"):
        run(world, settings("lisbon", source="{data_root}/nowhere/{city}"))


def test_rows_without_a_feature_are_refused_naming_the_partition_and_the_column(world: dict[str, Any]) -> None:
    folder = Path(world["data_root"]) / "thin" / "lisbon" / f"date={DAY.isoformat()}"
    folder.mkdir(parents=True)
    pd.DataFrame({"distance_km": [1.0, 2.0], "pickup_hour": [8, 9]}).to_parquet(folder / "part-0.parquet")

    with pytest.raises(score_step.DataError) as caught:
        run(world, settings("lisbon", source="{data_root}/thin/{city}"))

    message = str(caught.value)
    assert f"thin/lisbon/date={DAY.isoformat()}" in message
    assert "'weekday'" in message
    assert "fix the source's files" in message


def _partition_copy(world: dict[str, Any], tmp_path: Path, change: Any) -> dict[str, Any]:
    """A data root with lisbon's partition of DAY rewritten by ``change`` (a frame -> frame function)."""
    source = Path(world["data_root"]) / "raw" / "trips" / "lisbon" / f"date={DAY.isoformat()}"
    folder = tmp_path / "raw" / "trips" / "lisbon" / source.name
    folder.mkdir(parents=True)
    for file in source.iterdir():
        change(pd.read_parquet(file)).to_parquet(folder / file.name, index=False)
    return {**world, "data_root": str(tmp_path)}


def test_rows_whose_types_left_the_signature_are_refused_before_anything_is_written(
    world: dict[str, Any], tmp_path: Path
) -> None:
    from airflow_ml.ml.signature_check import SignatureMismatch

    changed = _partition_copy(world, tmp_path, lambda rows: rows.assign(distance_km=rows["distance_km"].astype(str)))

    expected = r"column 'distance_km' holds string \(str\), the signature says double"
    with pytest.raises(SignatureMismatch, match=expected):
        run(changed, settings("lisbon"))

    assert not (tmp_path / "predictions").exists()


def test_integers_where_the_model_reads_double_are_widened_and_named_in_the_payload(
    world: dict[str, Any], tmp_path: Path
) -> None:
    changed = _partition_copy(
        world, tmp_path, lambda rows: rows.assign(temperature_c=rows["temperature_c"].fillna(0).round().astype("int64"))
    )

    payload = run(changed, settings("lisbon", shadow=False)).payload

    assert payload["widened_columns"] == ["temperature_c"]
    assert payload["row_count"] > 0


def test_a_challenger_whose_signature_does_not_fit_is_not_shadowed_and_the_champion_still_scores(
    world: dict[str, Any], tmp_path: Path
) -> None:
    """The challenger was logged with integer distances: today's decimal distances do not fit it."""
    from airflow_ml.ml.model_registry import get_or_create_experiment, log_model, register_challenger
    from tests.support.scoring import ModelShelf

    client = world["client"]
    name = f"{TEMPLATE}.signature_drift"
    shelf = ModelShelf(client, f"file://{tmp_path}/artifacts")
    shelf.register(name, 5, alias="champion")
    run_id = client.create_run(get_or_create_experiment(client, name, f"file://{tmp_path}/artifacts")).info.run_id
    sample = shelf.trips().assign(distance_km=shelf.trips()["distance_km"].round().astype("int64"))
    source = log_model(client, run_id, shelf.trained(30), sample)
    version = register_challenger(client, name, source, run_id, {})

    payload = run(world, settings("lisbon", model_name=name)).payload

    assert payload["status"] == "scored"
    assert payload["shadow_uri"] is None
    assert f"{name} v{version.version}" in payload["shadow_refused"]
    assert "column 'distance_km' holds double (float64), the signature says long" in payload["shadow_refused"]


def test_a_csv_source_reads_its_time_column_as_date_times_so_a_time_key_makes_the_same_ids(
    world: dict[str, Any],
) -> None:
    parquet_day = Path(world["data_root"]) / "raw" / "trips" / "lisbon" / f"date={DAY.isoformat()}"
    csv_day = Path(world["data_root"]) / "csv_trips" / "lisbon" / f"date={DAY.isoformat()}"
    csv_day.mkdir(parents=True)
    pd.read_parquet(parquet_day).to_csv(csv_day / "part-0.csv", index=False)  # times as ISO 8601 text
    keyed = settings("lisbon", key_columns=["pickup_at"], time_column="pickup_at", shadow=False)

    from_parquet = run(world, keyed).logged_rows()
    from_csv = run(world, dataclasses.replace(keyed, source="{data_root}/csv_trips/{city}", data_format="csv"))

    assert from_csv.logged_rows()["prediction_id"].tolist() == from_parquet["prediction_id"].tolist()
    assert str(from_csv.logged_rows()["pickup_at"].dtype).startswith("datetime64")
