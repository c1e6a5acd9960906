"""The gate always loads the challenger as serving does, and reuses its logged holdout predictions only when they
are of its very holdout and that model's (real LightGBM models, a real MLflow store on SQLite and local artifacts);
otherwise it scores the holdout with the loaded model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from airflow_ml.data.snapshot import Manifest, read_snapshot
from airflow_ml.ml import model_registry as registry
from airflow_ml.ml.gate.naive_baseline import NaiveBaseline
from airflow_ml.ml.gate.rules import GateRules
from airflow_ml.ml.health import HOLDOUT_PREDICTIONS_ARTIFACT
from airflow_ml.ml.logged_holdout import SPOT_CHECK_ROWS, logged_holdout
from airflow_ml.ml.metrics import score
from airflow_ml.ml.model_cache import load_pyfunc
from airflow_ml.ml.steps.gate_step import gate
from airflow_ml.ml.steps.step_settings import GateSettings, SplitSettings
from airflow_ml.ml.steps.train_step import train_and_log
from airflow_ml.ml.train import time_split
from tests.support.training_data import late_trips, regression, snapshot

SPLIT = SplitSettings("pickup_at", 0.15, 0.15)
RULES = GateRules(naive_baseline=NaiveBaseline(), bootstrap={"resamples": 200, "confidence": 0.95, "seed": 0})


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("logged_holdout")
    uri = f"sqlite:///{folder}/mlflow.db"
    trips = late_trips(days=6, scale=0.3)
    other = trips.assign(duration_min=trips["duration_min"] * 1.1)  # other rows: another content hash
    return {
        "client": MlflowClient(tracking_uri=uri, registry_uri=uri),
        "artifacts": f"file://{folder / 'artifacts'}",
        "manifest": snapshot(trips, folder / "a", "r1"),
        "other": snapshot(other, folder / "b", "r2"),
    }


def _challenger(world: dict[str, Any], name: str, manifest: Manifest) -> Any:
    """A small real model trained and logged on ``manifest``, registered as the first version of ``name``."""
    client = world["client"]
    result = train_and_log(
        client, manifest, regression(num_boost_round=15), SPLIT, experiment=name, artifact_root=world["artifacts"]
    )
    return registry.register_challenger(client, name, result["model_uri"], result["run_id"], {})


def _run_files(client: MlflowClient, version: Any) -> Path:
    return Path(client.get_run(version.run_id).info.artifact_uri.removeprefix("file://"))


def _holdout(manifest: Manifest, split: SplitSettings = SPLIT) -> Any:
    frame = read_snapshot(manifest.uri)
    return time_split(frame, split.time_column, split.validation_fraction, split.holdout_fraction).holdout


def _served(client: MlflowClient, version: Any) -> Any:
    """The version's model as serving loads it (its registry source)."""
    model = load_pyfunc(client, version.name, str(version.version))
    return lambda rows: model.predict(rows[model.metadata.get_input_schema().input_names()])


def _scored(client: MlflowClient, version: Any, manifest: Manifest) -> float:
    """The challenger's holdout rmse as the model serving loads predicts it."""
    holdout = _holdout(manifest)
    return score("rmse", holdout["duration_min"].to_numpy(), np.asarray(_served(client, version)(holdout)))


def _relog(client: MlflowClient, version: Any, change: Any) -> None:
    """Overwrite the run's logged holdout predictions with ``change(rows)``, as a re-logged artifact would."""
    path = _run_files(client, version) / HOLDOUT_PREDICTIONS_ARTIFACT
    change(pd.read_parquet(path)).to_parquet(path, index=False)


def _check(client: MlflowClient, version: Any, manifest: Manifest, holdout: Any = None, **kw: Any) -> Any:
    holdout = _holdout(manifest) if holdout is None else holdout
    return logged_holdout(
        client,
        version,
        manifest.content_hash,
        holdout,
        target="duration_min",
        time_column="pickup_at",
        predict=_served(client, version),
        **kw,
    )


def _gate(world: dict[str, Any], name: str, version: Any, manifest: Manifest) -> dict[str, Any]:
    settings = GateSettings(name, "duration_min", "rmse", SPLIT, RULES)
    _, record = gate(world["client"], manifest, settings, challenger_version=str(version.version), mode="dry_run")
    return record


def test_a_challenger_trained_on_the_gates_snapshot_is_judged_on_its_logged_predictions_after_a_spot_check(
    world: dict[str, Any],
) -> None:
    client, manifest = world["client"], world["manifest"]
    version = _challenger(world, "logged.lisbon", manifest)

    record = _gate(world, "logged.lisbon", version, manifest)

    assert record["challenger_predictions"]["source"] == "logged"
    assert manifest.content_hash in record["challenger_predictions"]["reason"]
    rows = min(SPOT_CHECK_ROWS, len(_holdout(manifest)))
    assert f"predicts {rows} checked rows as logged" in record["challenger_predictions"]["reason"]
    assert record["challenger_score"] == pytest.approx(_scored(client, version, manifest), rel=1e-12)
    assert record["decision"] == "dry-run"


def test_an_unloadable_challenger_fails_the_gate_even_with_its_predictions_logged_and_the_champion_stays(
    world: dict[str, Any],
) -> None:
    client, manifest = world["client"], world["manifest"]
    first = _challenger(world, "broken.lisbon", manifest)
    settings = GateSettings("broken.lisbon", "duration_min", "rmse", SPLIT, RULES)
    gate(client, manifest, settings, challenger_version=str(first.version))
    assert client.get_model_version_by_alias("broken.lisbon", registry.CHAMPION).version == first.version
    second = _challenger(world, "broken.lisbon", manifest)
    (_run_files(client, second) / registry.MODEL_ARTIFACT_PATH / "artifacts" / "booster.txt").unlink()

    with pytest.raises(Exception, match=r"booster\.txt"):
        gate(client, manifest, settings, challenger_version=str(second.version))

    assert client.get_model_version_by_alias("broken.lisbon", registry.CHAMPION).version == first.version


def test_a_version_whose_source_is_another_runs_model_is_judged_on_the_model_serving_loads(
    world: dict[str, Any],
) -> None:
    client, manifest, other = world["client"], world["manifest"], world["other"]
    logged = train_and_log(
        client, manifest, regression(num_boost_round=15), SPLIT, experiment="src", artifact_root=world["artifacts"]
    )
    served = train_and_log(
        client, other, regression(num_boost_round=3), SPLIT, experiment="src", artifact_root=world["artifacts"]
    )
    # Valid in MLflow: the run of one model, the source of another; serving loads the source.
    version = registry.register_challenger(client, "source.lisbon", served["model_uri"], logged["run_id"], {})
    missing = registry.register_challenger(
        client, "nowhere.lisbon", f"{world['artifacts']}/nowhere/model", logged["run_id"], {}
    )

    record = _gate(world, "source.lisbon", version, manifest)

    assert record["challenger_predictions"]["source"] == "scored"
    assert "lies outside its run" in record["challenger_predictions"]["reason"]
    assert record["challenger_score"] == pytest.approx(_scored(client, version, manifest), rel=1e-12)
    with pytest.raises(Exception, match="nowhere"):
        _gate(world, "nowhere.lisbon", missing, manifest)


def test_predictions_re_logged_after_training_fail_the_spot_check_and_the_holdout_is_scored(
    world: dict[str, Any],
) -> None:
    client, manifest = world["client"], world["manifest"]
    version = _challenger(world, "relogged.lisbon", manifest)
    expected = _scored(client, version, manifest)
    _relog(client, version, lambda rows: rows.assign(prediction=rows["duration_min"]))  # a perfect "model"

    record = _gate(world, "relogged.lisbon", version, manifest)

    assert record["challenger_predictions"]["source"] == "scored"
    assert "otherwise than logged" in record["challenger_predictions"]["reason"]
    assert record["challenger_score"] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        (lambda p: p.astype(str), "not numbers"),
        (lambda p: p.where(p.index != 3), "not all finite (row 3: nan)"),
        (lambda p: p.where(p.index != 5, np.inf), "not all finite (row 5: inf)"),
    ],
)
def test_logged_predictions_of_text_or_not_finite_fall_back_to_scoring(
    world: dict[str, Any], bad: Any, why: str
) -> None:
    client, manifest = world["client"], world["manifest"]
    version = _challenger(world, "bad.lisbon", manifest)
    _relog(client, version, lambda rows: rows.assign(prediction=bad(rows["prediction"])))

    checked = _check(client, version, manifest)

    assert checked.predictions is None
    assert checked.reason.startswith(f"the logged predictions are {why}")


def test_a_binary_metric_takes_only_probabilities_in_0_1(world: dict[str, Any]) -> None:
    client, manifest = world["client"], world["manifest"]
    version = _challenger(world, "prob.lisbon", manifest)

    as_numbers = _check(client, version, manifest)
    as_probabilities = _check(client, version, manifest, probability=True)

    assert as_numbers.predictions is not None
    assert as_probabilities.predictions is None
    assert "not probabilities in [0, 1] (row 0:" in as_probabilities.reason


def test_logged_rows_of_another_split_or_with_other_values_are_not_the_holdout(world: dict[str, Any]) -> None:
    client, manifest = world["client"], world["manifest"]
    version = _challenger(world, "split.lisbon", manifest)
    holdout = _holdout(manifest)
    wider = _holdout(manifest, SplitSettings("pickup_at", 0.15, 0.2))
    changed = holdout.assign(duration_min=holdout["duration_min"] + 1.0)

    same = _check(client, version, manifest, holdout)
    other_split = _check(client, version, manifest, wider)
    other_values = _check(client, version, manifest, changed)

    assert same.predictions is not None
    assert len(same.predictions) == len(holdout)
    assert other_split.predictions is None
    assert other_split.reason == f"{len(holdout)} logged holdout rows, the gate's holdout has {len(wider)}"
    assert other_values.predictions is None
    assert other_values.reason == "the logged holdout's row 0 differs from the gate's holdout row 0"


def test_a_logged_row_that_differs_only_in_a_slice_column_is_caught_by_the_row_key(world: dict[str, Any]) -> None:
    client, manifest = world["client"], world["manifest"]
    version = _challenger(world, "zone.lisbon", manifest)
    zones = _holdout(manifest)["pickup_zone"]
    row = int(
        np.flatnonzero((zones != zones.iloc[0]).to_numpy(dtype=bool, na_value=False))[0]
    )  # a row of another zone than the first
    # The same time and target in every row: only the slice column of two rows is swapped.
    _relog(client, version, lambda rows: rows.assign(pickup_zone=_swap(rows["pickup_zone"], 0, row)))

    checked = _check(client, version, manifest)

    assert checked.predictions is None
    assert checked.reason == "the logged holdout's row 0 differs from the gate's holdout row 0"


def _swap(values: pd.Series, a: int, b: int) -> pd.Series:
    out = values.copy()
    out.iloc[a], out.iloc[b] = values.iloc[b], values.iloc[a]
    return out
