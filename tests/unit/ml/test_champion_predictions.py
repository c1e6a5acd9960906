"""The champion's predictions on a snapshot, kept beside it: reused while the champion, the features and the rows
match, predicted again when any of them changes or the file does not fit; a real LightGBM champion in MLflow."""

from __future__ import annotations

import dataclasses
import io
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from airflow_ml.data.snapshot import Manifest, read_snapshot
from airflow_ml.ml.champion_predictions import PREFIX, ChampionPredictions, cache_key
from tests.support.training_data import FEATURES, late_trips, regression, snapshot


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A champion trained and registered in a real MLflow store, on the snapshot ``trained``; ``other`` has the
    same rows under another run (one content hash, two folders), ``later`` other rows."""
    from mlflow import MlflowClient

    from airflow_ml.ml import model_registry as registry
    from airflow_ml.ml.steps.step_settings import SplitSettings
    from airflow_ml.ml.steps.train_step import train_and_log

    root = tmp_path_factory.mktemp("predictions")
    store = f"sqlite:///{root}/mlflow.db"
    client = MlflowClient(tracking_uri=store, registry_uri=store)
    trips = late_trips(days=3, scale=0.3)
    trained: Any = snapshot(trips, root / "a", "trained")
    other: Any = snapshot(trips, root / "b", "other")
    later: Any = snapshot(late_trips(days=4, scale=0.3), root / "c", "later")
    model = "ride_duration.kept"
    spec, split = regression(num_boost_round=5), SplitSettings("pickup_at")
    result = train_and_log(client, trained, spec, split, experiment=model, artifact_root=f"file://{root}/artifacts")
    version = registry.register_challenger(client, model, result["model_uri"], result["run_id"], {})
    return {"client": client, "version": version, "trained": trained, "other": other, "later": later}


def loader(world: dict[str, Any], loads: list[int]) -> Any:
    """Loads the champion as the drift step does, counting the loads in ``loads``."""
    from airflow_ml.ml import model_registry as registry

    def load() -> Any:
        loads.append(1)
        return registry.load_version(world["client"], world["version"])

    return load


def predictions(world: dict[str, Any], loads: list[int], version: Any = None) -> ChampionPredictions:
    """A fresh cache (as a new run makes one) whose loads of the champion are counted in ``loads``."""
    return ChampionPredictions(version or world["version"], FEATURES, loader(world, loads))


def rows(manifest: Manifest) -> pd.DataFrame:
    return read_snapshot(manifest.uri, columns=FEATURES)


def kept(manifest: Manifest) -> list[Path]:
    return sorted(Path(manifest.uri.removeprefix("file://")).glob(f"{PREFIX}*.npy"))


def test_a_snapshot_is_predicted_once_and_the_next_run_reads_the_same_values_without_loading_the_model(
    world: dict[str, Any],
) -> None:
    from airflow_ml.ml import model_registry as registry

    manifest, loads = world["later"], []
    first = predictions(world, loads)
    made = first.whole(manifest, rows(manifest))
    again = first.whole(manifest, rows(manifest))
    assert first.sources == ["predicted", "memory"]
    assert len(kept(manifest)) == 1

    second = predictions(world, loads)
    read = second.whole(manifest, rows(manifest))

    assert second.sources == ["file"]
    assert loads == [1]  # the second run never loaded the champion
    fresh = np.asarray(registry.load_version(world["client"], world["version"]).predict(rows(manifest)), dtype=float)
    assert np.array_equal(made, fresh)  # exactly, not close
    assert np.array_equal(read, fresh)
    assert again is made


def test_two_snapshots_with_one_content_hash_are_predicted_once(world: dict[str, Any]) -> None:
    trained, other, loads = world["trained"], world["other"], []
    assert trained.content_hash == other.content_hash
    assert trained.uri != other.uri
    cache = predictions(world, loads)

    ours = cache.whole(trained, rows(trained))
    theirs = cache.whole(other, rows(other))

    assert cache.sources == ["predicted", "memory"]
    assert theirs is ours
    assert kept(other) == []  # nothing was written for the rows already kept beside the first


def test_another_champion_other_features_or_other_rows_are_predicted_again(world: dict[str, Any]) -> None:
    trained, later, first = world["trained"], world["later"], world["version"]
    predictions(world, []).whole(trained, rows(trained))
    newer = SimpleNamespace(name=first.name, version="2", run_id=first.run_id, source=first.source)

    by_another = predictions(world, [], version=newer)
    by_another.whole(trained, rows(trained))

    assert by_another.sources == ["predicted"]  # the first champion's file beside the same rows is not read
    ours = cache_key(first, FEATURES, trained.content_hash)
    assert cache_key(newer, FEATURES, trained.content_hash) != ours
    assert cache_key(first, FEATURES[:-1], trained.content_hash) != ours
    assert cache_key(first, FEATURES, later.content_hash) != ours
    recreated = SimpleNamespace(**{k: getattr(first, k) for k in ("name", "version", "run_id", "source")})
    recreated.creation_timestamp = first.creation_timestamp + 1  # deleted, then registered again as version 1
    assert cache_key(recreated, FEATURES, trained.content_hash) != ours


def test_an_upgrade_of_the_libraries_that_predict_makes_a_new_key(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_ml.ml import champion_predictions

    first, trained = world["version"], world["trained"]
    ours = cache_key(first, FEATURES, trained.content_hash)
    upgraded = {**champion_predictions._library_versions(), "lightgbm": "99.0.0"}
    monkeypatch.setattr(champion_predictions, "_library_versions", lambda: upgraded)

    assert cache_key(first, FEATURES, trained.content_hash) != ours


def test_nothing_is_kept_beside_a_snapshot_that_retention_removed_after_it_was_read(
    world: dict[str, Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import shutil

    later = world["later"]
    frame = rows(later)
    gone = tmp_path / "gone"
    shutil.copytree(Path(later.uri.removeprefix("file://")), gone)
    for path in gone.glob(f"{PREFIX}*.npy"):
        path.unlink()
    copy = dataclasses.replace(later, uri=f"file://{gone}")
    (gone / "manifest.json").unlink()  # retention removes the folder while the task predicts

    with caplog.at_level(logging.WARNING):
        values = predictions(world, []).whole(copy, frame)

    assert values.shape == (later.row_count,)
    assert kept(copy) == []
    assert "is gone" in caplog.text


def test_a_kept_file_that_does_not_fit_the_rows_is_predicted_again(
    world: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    later, loads = world["later"], []
    predictions(world, loads).whole(later, rows(later))
    (path,) = kept(later)
    path.write_bytes(path.read_bytes()[:-8])  # not an .npy any more
    cache = predictions(world, loads)

    with caplog.at_level(logging.WARNING):
        values = cache.whole(later, rows(later))

    assert cache.sources == ["predicted"]
    assert values.shape == (later.row_count,)
    assert "could not be used" in caplog.text
    np.save(path, np.zeros(3))  # an array of the wrong length
    short = predictions(world, loads)
    assert np.array_equal(short.whole(later, rows(later)), values)
    assert short.sources == ["predicted"]


def _npy_header(shape: tuple[int, ...], descr: str = "<f8") -> bytes:
    """A version 1.0 ``.npy`` header claiming ``shape`` of ``descr``, padded as numpy pads it."""
    from numpy.lib import format as npy

    buffer = io.BytesIO()
    npy.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


#: Kept files that are no vector of a snapshot's rows, each made for a snapshot of ``n`` rows.
HOSTILE = {
    # np.load would open a zip as an archive (no dtype, no shape): the task would fail on it.
    "a zip": lambda n: b"PK\x03\x04" + b"\0" * 64,
    # np.load would allocate the 8 TiB the header claims before finding the data short.
    "a header claiming 2**40 values": lambda n: _npy_header((2**40,)),
    "int64 values of the right count": lambda n: _npy_header((n,), "<i8") + b"\0" * (8 * n),
    "float64 values in Fortran order": lambda n: _npy_header((n, 1)) + b"\0" * (8 * n),
    "more bytes than the values and a header": lambda n: _npy_header((n,)) + b"\0" * (8 * n + 8192),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_kept_file_that_is_no_vector_of_the_rows_is_never_loaded_and_is_predicted_again(
    world: dict[str, Any], caplog: pytest.LogCaptureFixture, name: str
) -> None:
    later, loads = world["later"], []
    values = predictions(world, loads).whole(later, rows(later))
    (path,) = kept(later)
    path.write_bytes(HOSTILE[name](later.row_count))
    cache = predictions(world, loads)

    with caplog.at_level(logging.WARNING):
        again = cache.whole(later, rows(later))

    assert cache.sources == ["predicted"]
    assert np.array_equal(again, values)
    assert "could not be used" in caplog.text


def test_a_folder_that_cannot_be_written_keeps_nothing_and_still_predicts(
    world: dict[str, Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    later = world["later"]
    gone = dataclasses.replace(later, uri=str(tmp_path / "no" / "such" / "snapshot"))
    cache = predictions(world, [])

    with caplog.at_level(logging.WARNING):
        values = cache.whole(gone, rows(later))

    assert values.shape == (later.row_count,)
    assert "were not kept" in caplog.text


def test_predictions_are_kept_beside_a_snapshot_on_s3(world: dict[str, Any]) -> None:
    """The same file on an object store (moto's S3 in this process): written once, read back by the next run."""
    import uuid

    from airflow_ml.hooks.storage_credentials import storage_options
    from tests.support.s3_servers import moto_endpoint, s3_client

    later = world["later"]
    with moto_endpoint() as url:
        bucket = f"kept-{uuid.uuid4().hex[:12]}"
        s3_client(url).create_bucket(Bucket=bucket)
        on_s3 = dataclasses.replace(later, uri=f"s3://{bucket}/snapshots/ride_duration/lisbon/later")
        # A snapshot that exists (its manifest): nothing is kept beside one that is gone.
        s3_client(url).put_object(Bucket=bucket, Key="snapshots/ride_duration/lisbon/later/manifest.json", Body=b"{}")
        options = storage_options(on_s3.uri)

        def run() -> ChampionPredictions:
            return ChampionPredictions(world["version"], FEATURES, loader(world, []), storage_options=options)

        first, second = run(), run()
        made = first.whole(on_s3, rows(later))
        read = second.whole(on_s3, rows(later))
        listed = s3_client(url).list_objects_v2(Bucket=bucket)["Contents"]

    assert (first.sources, second.sources) == (["predicted"], ["file"])
    assert np.array_equal(made, read)
    names = sorted(o["Key"].rsplit("/", 1)[-1] for o in listed)
    assert names[-1] == "manifest.json"
    assert [name[: len(PREFIX)] for name in names[:-1]] == [PREFIX]
