"""``training.engine`` and ``training.dask`` in a city file: validated with errors naming file, line, field and
fix, and handed to the train task as :class:`~airflow_ml.ml.dask_settings.DaskSettings` (no Dask at parse)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from airflow_ml.factory.dag_defaults import DASK_TASK_TIMEOUT_MINUTES, default_args
from airflow_ml.factory.tasks import task_settings
from airflow_ml.ml.steps.step_settings import TrainingSettings
from airflow_ml.templates import load_city_file
from airflow_ml.templates.dask_spec import MEMORY_PATTERN, memory_bytes
from tests.support.city_files import config_error, templates_folder, write_city


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return templates_folder(tmp_path)


def load(root: Path, training: str) -> object:
    """Oslo's city file with this ``training:`` section (YAML lines indented by two), loaded."""
    path = write_city(root, "oslo", f"city: oslo\ntemplate: ride_duration\ntraining:\n{training}")
    return load_city_file(path, root / "templates")


def test_a_city_trains_on_a_named_cluster_and_the_task_gets_its_settings(root: Path, tmp_path: Path) -> None:
    config = load(
        root, "  engine: dask\n  dask:\n    connection: dask_prod\n    listen_port: 12400\n    early_stopping_rows: 0\n"
    )
    settings = task_settings(config, expectations_dir=tmp_path).training  # type: ignore[arg-type]

    assert settings.engine == "dask"
    assert settings.dask.connection == "dask_prod"
    assert settings.dask.listen_port == 12400
    assert settings.dask.early_stopping_rows == 0
    assert TrainingSettings.from_dict(settings.to_dict()) == settings  # what the operator gets back


def test_local_is_the_default_and_a_local_cluster_is_sized_in_yaml(root: Path, tmp_path: Path) -> None:
    plain = task_settings(load(root, "  seed: 1\n"), expectations_dir=tmp_path).training  # type: ignore[arg-type]
    assert plain.engine == "local"
    assert plain.dask.early_stopping_rows == 1_000_000  # the default copy of validation rows on each worker
    sized = load(root, "  engine: dask\n  dask:\n    local_cluster: {n_workers: 3, memory_limit: 512MiB}\n")
    cluster = task_settings(sized, expectations_dir=tmp_path).training.dask  # type: ignore[arg-type]
    assert cluster.connection is None
    assert (cluster.local_cluster.n_workers, cluster.local_cluster.memory_limit) == (3, "512MiB")


def test_every_task_that_reads_the_snapshot_works_where_training_does(root: Path, tmp_path: Path) -> None:
    from airflow_ml.ml.steps.step_settings import GateSettings, HealthSettings, SnapshotSettings, ValidationSettings

    config = load(root, "  engine: dask\n  dask:\n    connection: dask_prod\n")
    tasks = task_settings(config, expectations_dir=tmp_path)  # type: ignore[arg-type]
    readers = {"snapshot": tasks.snapshot, "validation": tasks.validation, "gate": tasks.gate, "health": tasks.health}

    for name, settings in readers.items():
        assert (name, settings.engine, settings.dask) == (name, "dask", tasks.training.dask)
    # What each operator gets back from its dict (the settings reach the task as to_dict()).
    kinds = {
        "snapshot": SnapshotSettings,
        "validation": ValidationSettings,
        "gate": GateSettings,
        "health": HealthSettings,
    }
    for name, kind in kinds.items():
        assert kind.from_dict(readers[name].to_dict()).dask.connection == "dask_prod"  # type: ignore[attr-defined, union-attr]
    local = task_settings(load(root, "  seed: 1\n"), expectations_dir=tmp_path)  # type: ignore[arg-type]
    # A local city's tasks carry no Dask settings at all: its parsed DAG stays as small as before.
    assert [(s.engine, s.dask) for s in (local.snapshot, local.validation, local.gate, local.health)] == [
        ("local", None)
    ] * 4


@pytest.mark.parametrize(
    ("training", "expected"),
    [
        ("  engine: spark\n", r"line 4: training\.engine.*'local' or 'dask' \(got 'spark'\)"),
        (
            "  engine: dask\n  dask:\n    local_cluster: {memory_limit: lots}\n",
            r"memory_limit 'lots' is not a memory size.*2GiB",
        ),
        ("  engine: dask\n  dask:\n    listen_port: 80\n", r"listen_port.*1024"),
        ("  engine: dask\n  dask:\n    early_stopping_rows: -5\n", r"line 6: training\.dask\.early_stopping_rows.*0"),
        ("  engine: dask\n  dask:\n    local_cluster: {memory_limit: 0GiB}\n", r"'0GiB' is 0 bytes, outside 256MiB"),
        ("  engine: dask\n  dask:\n    local_cluster: {memory_limit: 1kB}\n", r"memory_limit '1kB' .*2GiB"),
        ("  engine: dask\n  dask:\n    local_cluster: {memory_limit: 900000TiB}\n", r"outside 256MiB to 1TiB"),
        (
            "  engine: dask\n  dask:\n    listen_port: 12400\n",
            r"listen_port 12400 with no connection.*remove listen_port.*dask\.connection",
        ),
        ("  engine: dask\n  dask:\n    connection: 'tcp://host:8786'\n", r"dask\.connection"),
        ("  engine: dask\n  warm_start: true\n", r"engine 'dask' does not warm start.*warm_start: false"),
        ("  engine: dask\n  search: {trials: 3}\n", r"does not search parameters \(3 trials.*search\.trials: 0"),
    ],
)
def test_bad_engine_settings_name_the_line_field_and_fix(root: Path, training: str, expected: str) -> None:
    path = write_city(root, "oslo", f"city: oslo\ntemplate: ride_duration\ntraining:\n{training}")
    text = str(config_error(path, root))
    assert str(path) in text
    assert re.search(expected, text, flags=re.DOTALL)


@pytest.mark.parametrize("size", ["2GiB", "512MiB", "4GB", "1.5 GB", "100kB", "10B", "0.0001kB", "3TiB", "1KB"])
def test_every_memory_size_the_yaml_accepts_is_one_dask_reads(size: str) -> None:
    from dask.utils import parse_bytes

    assert MEMORY_PATTERN.match(size)
    assert memory_bytes(size) == parse_bytes(size)  # the bounds are checked on the figure Dask will use


def test_a_fixed_port_is_fine_for_a_one_worker_local_cluster_or_a_named_cluster(root: Path, tmp_path: Path) -> None:
    one = "  engine: dask\n  dask:\n    listen_port: 12400\n    local_cluster: {n_workers: 1}\n"
    named = "  engine: dask\n  dask:\n    listen_port: 12400\n    connection: dask_prod\n"
    for training in (one, named):
        settings = task_settings(load(root, training), expectations_dir=tmp_path).training  # type: ignore[arg-type]
        assert settings.dask.listen_port == 12400


def test_a_dask_dag_gets_a_default_task_timeout_that_yaml_overrides(root: Path) -> None:
    """A paused worker would hold a Dask task for ever: ``engine: dask`` bounds every task unless YAML sets one."""
    local = default_args(load(root, "  seed: 1\n"))  # type: ignore[arg-type]
    dask = default_args(load(root, "  engine: dask\n"))  # type: ignore[arg-type]
    text = "city: oslo\ntemplate: ride_duration\ndag:\n  task_timeout_minutes: 90\ntraining:\n  engine: dask\n"
    path = write_city(root, "oslo", text)
    chosen = default_args(load_city_file(path, root / "templates"))

    assert "execution_timeout" not in local
    assert dask["execution_timeout"] == dt.timedelta(minutes=DASK_TASK_TIMEOUT_MINUTES)
    assert chosen["execution_timeout"] == dt.timedelta(minutes=90)
