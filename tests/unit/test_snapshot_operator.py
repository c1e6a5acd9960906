"""SnapshotOperator: the dataset contract from the factory, a broken one failing for good, warnings in the log."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_ml.data.demo import write_demo_data
from airflow_ml.factory import build_dag
from airflow_ml.factory.dataset_contract import data_contract
from airflow_ml.operators.snapshot import SnapshotOperator
from airflow_ml.templates import load_city_configs

REPO = Path(__file__).resolve().parents[2]
RUN_ID = "manual__2026-03-06T00:00:00+00:00"


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lake")
    write_demo_data(root, cities=["lisbon"], batch="later", scale=0.05)
    return root


@pytest.fixture
def data_root(lake: Path, tmp_path: Path) -> Path:
    shutil.copytree(lake, tmp_path / "data")
    return tmp_path / "data"


@pytest.fixture(scope="module")
def config() -> Any:
    configs, _ = load_city_configs(REPO / "dag_templates")
    return next(c for c in configs if c.city == "lisbon")


def run_context(config: Any) -> dict[str, Any]:
    """What the task runner hands ``execute``: the run (no conf), its DAG and the DAG's default Params."""
    dag = build_dag(config, expectations_dir=REPO / "expectations")
    params = {name: dag.params.get_param(name).value for name in dag.params}
    return {
        "run_id": RUN_ID,
        "dag_run": SimpleNamespace(conf={}),
        "dag": dag,
        "params": params,
        "ti": SimpleNamespace(dag_id=dag.dag_id),
    }


def operator(data_root: Path, contract: dict[str, Any]) -> SnapshotOperator:
    return SnapshotOperator(
        task_id="snapshot",
        template="ride_duration",
        city="lisbon",
        source="{data_root}/raw/trips/{city}",
        time_column="pickup_at",
        data_root=str(data_root),
        contract=contract,
    )


def test_the_factory_hands_the_snapshot_task_the_city_contract(config: Any) -> None:
    dag = build_dag(config, expectations_dir=REPO / "expectations")

    task = dag.get_task("snapshot")

    assert task.contract == data_contract(config).to_dict()
    assert {"column": "temperature_c", "kind": "numeric", "field": "dataset.features[4]"} in task.contract["rules"]


def test_a_broken_contract_fails_the_task_for_good_and_writes_no_snapshot(data_root: Path, config: Any) -> None:
    for path in data_root.glob("raw/trips/lisbon/date=*/*.parquet"):
        pd.read_parquet(path).drop(columns=["temperature_c"]).to_parquet(path, index=False)

    with pytest.raises(AirflowFailException) as info:
        operator(data_root, data_contract(config).to_dict()).execute(run_context(config))  # type: ignore[arg-type]

    assert "dataset.features[4]: column 'temperature_c' is not in the data" in str(info.value)
    assert "no snapshot was written" in str(info.value)
    assert not (data_root / "snapshots").exists()


def test_filters_and_gaps_are_logged(data_root: Path, config: Any, capfd: pytest.CaptureFixture[str]) -> None:
    shutil.rmtree(data_root / "raw" / "trips" / "lisbon" / "date=2026-03-10")
    contract = data_contract(config).to_dict()
    contract["filters"] = [{"column": "distance_km", "op": ">", "value": 5, "field": "dataset.filters[0]"}]

    result = operator(data_root, contract).execute(run_context(config))  # type: ignore[arg-type]

    # Outside a task runner the task logger (structlog) prints one line per event to stdout.
    lines = capfd.readouterr().out.splitlines()
    dropped = [line for line in lines if "filter dataset.filters[0] (distance_km > 5) dropped " in line]
    gap = [line for line in lines if "1 day(s) inside the run's window have no partition" in line]
    assert len(dropped) == 1
    assert len(gap) == 1
    assert "warning" in gap[0]
    assert gap[0].endswith("2026-03-10") or "snapshot: 2026-03-10 " in gap[0]
    rows = pd.read_parquet(Path(result["uri"]) / "data.parquet")
    assert (rows["distance_km"] > 5).all()
    assert result["row_count"] == len(rows)


@pytest.mark.parametrize("linked", [False, True])
def test_a_source_outside_the_data_root_fails_the_task_for_good(
    data_root: Path, config: Any, tmp_path: Path, linked: bool
) -> None:
    # A '..' in the pattern (lint refuses it; a task still checks), or a source folder linked out of the data root.
    source = "{data_root}/raw/trips/{city}"
    if linked:
        city = data_root / "raw" / "trips" / "lisbon"
        shutil.move(city, tmp_path / "elsewhere")
        city.symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    else:
        shutil.copytree(data_root / "raw", tmp_path / "raw")
        source = "{data_root}/../raw/trips/{city}"
    task = operator(data_root, data_contract(config).to_dict())
    task.source = source

    with pytest.raises(AirflowFailException) as info:
        task.execute(run_context(config))  # type: ignore[arg-type]

    assert ("is a symbolic link to" if linked else "has a '..' segment") in str(info.value)
    assert "no snapshot was written" in str(info.value)
    assert not (data_root / "snapshots").exists()
