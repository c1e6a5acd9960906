"""The snapshot step's engine: one data.parquet in this process, or a partitioned snapshot on Dask
(airflow_ml.ml.steps.snapshot_step)."""

from __future__ import annotations

from pathlib import Path

import dask
import pytest

from airflow_ml.data.demo import write_demo_data
from airflow_ml.data.snapshot import DATA_FILE, read_snapshot
from airflow_ml.data.snapshot_parts import FILE_KIND, PARTITIONED_KIND
from airflow_ml.ml.steps.snapshot_step import snapshot, sources
from airflow_ml.ml.steps.step_settings import SnapshotSettings


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("root")
    write_demo_data(root, cities=["lisbon"], batch="initial", scale=0.02)
    return str(root)


SETTINGS = SnapshotSettings(template="ride", city="lisbon", source="{data_root}/raw/trips/{city}", window_days=5)


def test_the_dask_engine_takes_a_partitioned_snapshot_of_the_same_rows(data_root: str) -> None:
    uris = sources(SETTINGS, data_root)
    local = snapshot(SETTINGS, uris, data_root=data_root, run_id="local")

    with dask.config.set(scheduler="synchronous"):
        parts = snapshot(SETTINGS, uris, data_root=data_root, run_id="dask", engine="dask")

    assert (local.kind, parts.kind) == (FILE_KIND, PARTITIONED_KIND)
    assert (Path(local.uri) / DATA_FILE).is_file()
    assert not (Path(parts.uri) / DATA_FILE).exists()
    assert parts.partitions == local.partitions
    assert read_snapshot(parts.uri).equals(read_snapshot(local.uri))


def test_an_unknown_engine_is_refused(data_root: str) -> None:
    with pytest.raises(ValueError, match=r"engine 'spark' is not one of 'local', 'dask'"):
        snapshot(SETTINGS, sources(SETTINGS, data_root), data_root=data_root, run_id="x", engine="spark")  # type: ignore[arg-type]
