"""SnapshotOperator: the dataset contract from the factory, a broken one failing for good, warnings in the log."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_ml.data.demo import write_demo_data
from airflow_ml.data.refusal import REFUSAL, read_refusal
from airflow_ml.data.snapshot import snapshot_location
from airflow_ml.exceptions import DataContractError, DataError, StorageUnreachable
from airflow_ml.factory import build_dag
from airflow_ml.factory.dataset_contract import data_contract
from airflow_ml.ml.steps.step_settings import SnapshotSettings
from airflow_ml.operators.snapshot_operator import SnapshotOperator, refusal_kind
from airflow_ml.templates import load_city_configs
from tests.support import REPO

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


def run_context(config: Any, conf: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the task runner hands ``execute``: the run and its conf, its DAG and the DAG's Params under the conf."""
    dag = build_dag(config, expectations_dir=REPO / "expectations")
    params = {name: dag.params.get_param(name).value for name in dag.params}
    return {
        "run_id": RUN_ID,
        "dag_run": SimpleNamespace(conf=conf or {}),
        "dag": dag,
        "params": {**params, **(conf or {})},
        "ti": SimpleNamespace(dag_id=dag.dag_id),
    }


def operator(data_root: Path, contract: dict[str, Any]) -> SnapshotOperator:
    settings = SnapshotSettings(
        template="ride_duration",
        city="lisbon",
        source="{data_root}/raw/trips/{city}",
        time_column="pickup_at",
        contract=contract,
    )
    return SnapshotOperator(task_id="snapshot", settings=settings.to_dict(), data_root=str(data_root))


def test_the_factory_hands_the_snapshot_task_the_city_contract(config: Any) -> None:
    dag = build_dag(config, expectations_dir=REPO / "expectations")

    task = dag.get_task("snapshot")

    assert task.settings["contract"] == data_contract(config).to_dict()
    rule = {"column": "temperature_c", "kind": "numeric", "field": "dataset.features[4]"}
    assert rule in task.settings["contract"]["rules"]


def test_a_broken_contract_fails_the_task_for_good_and_writes_no_snapshot(data_root: Path, config: Any) -> None:
    for path in data_root.glob("raw/trips/lisbon/date=*/*.parquet"):
        pd.read_parquet(path).drop(columns=["temperature_c"]).to_parquet(path, index=False)

    with pytest.raises(AirflowFailException) as info:
        operator(data_root, data_contract(config).to_dict()).execute(run_context(config))  # type: ignore[arg-type]

    assert "dataset.features[4]: column 'temperature_c' is not in the data" in str(info.value)
    assert "no snapshot was written" in str(info.value)
    # No snapshot: only the refusal record where it would have been (see the refusal tests below).
    assert [p.name for p in (data_root / "snapshots").rglob("*") if p.is_file()] == [REFUSAL]


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


# --- a refused run leaves refusal.json where its snapshot would be ---------------------------------------------------


def refusal_folder(data_root: Path) -> Path:
    return Path(snapshot_location(str(data_root / "snapshots"), "ride_duration", "lisbon", RUN_ID))


def test_a_run_refused_by_the_contract_leaves_a_refusal_record_and_no_data(data_root: Path, config: Any) -> None:
    for path in data_root.glob("raw/trips/lisbon/date=*/*.parquet"):
        pd.read_parquet(path).drop(columns=["temperature_c"]).to_parquet(path, index=False)
    conf = {"window_start": "2026-03-06", "window_end": "2026-03-12"}

    with pytest.raises(AirflowFailException, match="column 'temperature_c' is not in the data"):
        operator(data_root, data_contract(config).to_dict()).execute(run_context(config, conf))  # type: ignore[arg-type]

    folder = refusal_folder(data_root)
    assert sorted(p.name for p in folder.iterdir()) == [REFUSAL]  # no data.parquet, no manifest.json
    refused = read_refusal(str(folder))
    assert refused is not None
    assert (refused.template, refused.city, refused.run_id, refused.kind) == (
        "ride_duration",
        "lisbon",
        RUN_ID,
        "contract",
    )
    assert refused.window == "2026-03-06..2026-03-12"
    assert refused.error.startswith("the data does not match the dataset contract of the template")
    assert "dataset.features[4]: column 'temperature_c' is not in the data" in refused.error
    assert refused.reason == f"snapshot refused: {refused.error}"
    assert refused.created_at.endswith("+00:00")


def test_a_refused_conf_and_a_missing_source_are_recorded_with_their_kind(data_root: Path, config: Any) -> None:
    contract = data_contract(config).to_dict()
    with pytest.raises(AirflowFailException, match="unknown trigger parameter 'num_boost_rounds'"):
        operator(data_root, contract).execute(run_context(config, {"num_boost_rounds": 1}))  # type: ignore[arg-type]
    refused = read_refusal(str(refusal_folder(data_root)))
    assert refused is not None
    assert (refused.kind, refused.window) == ("conf", "-")
    assert refused.error.startswith("the conf of a run of ride_duration.lisbon is refused, nothing runs: unknown")

    shutil.rmtree(data_root / "raw" / "trips" / "lisbon")
    with pytest.raises(DataError, match="does not exist") as info:  # retryable: Airflow's retries try again
        operator(data_root, contract).execute(run_context(config))  # type: ignore[arg-type]
    assert not isinstance(info.value, DataContractError)
    refused = read_refusal(str(refusal_folder(data_root)))
    assert refused is not None
    assert refused.kind == "storage"  # the same run's later try: its record says what stopped it last
    assert "does not exist" in refused.error


def test_a_refusal_record_that_cannot_be_written_never_hides_the_refusal(
    data_root: Path, config: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    for path in data_root.glob("raw/trips/lisbon/date=*/*.parquet"):
        pd.read_parquet(path).drop(columns=["temperature_c"]).to_parquet(path, index=False)
    (data_root / "snapshots").write_text("a file where the snapshot folders would go")

    with pytest.raises(AirflowFailException, match="column 'temperature_c' is not in the data"):
        operator(data_root, data_contract(config).to_dict()).execute(run_context(config))  # type: ignore[arg-type]

    assert "no refusal record was written" in capfd.readouterr().out
    assert (data_root / "snapshots").is_file()


def test_a_complete_snapshot_never_gets_a_refusal_record(data_root: Path, config: Any) -> None:
    contract = data_contract(config).to_dict()
    done = operator(data_root, contract).execute(run_context(config))  # type: ignore[arg-type]
    # A later try of the same run refused for its conf (written into the database behind Airflow's back).
    with pytest.raises(AirflowFailException):
        operator(data_root, contract).execute(run_context(config, {"num_boost_rounds": 1}))  # type: ignore[arg-type]

    assert not (Path(done["uri"]) / REFUSAL).exists()


def test_what_the_record_calls_a_failure() -> None:
    contract = AirflowFailException("refused")
    contract.__cause__ = DataContractError("column missing")
    outage = StorageUnreachable("the bucket did not answer")

    assert refusal_kind(contract) == "contract"
    assert refusal_kind(AirflowFailException("the conf of a run is refused")) == "conf"
    assert refusal_kind(DataError("no partition in the window")) == "storage"
    assert refusal_kind(outage) is None  # the data may be fine: a retry may succeed, nothing is recorded
    assert refusal_kind(ValueError("a bug")) is None


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
    task.settings["source"] = source

    with pytest.raises(AirflowFailException) as info:
        task.execute(run_context(config))  # type: ignore[arg-type]

    assert ("is a symbolic link to" if linked else "has a '..' segment") in str(info.value)
    assert "no snapshot was written" in str(info.value)
    assert [p.name for p in (data_root / "snapshots").rglob("*") if p.is_file()] == [REFUSAL]
    refused = read_refusal(str(refusal_folder(data_root)))
    assert refused is not None
    assert refused.kind == "contract"


# --- the operator's arguments and template fields --------------------------------------------------------------------


def test_init_takes_the_settings_as_one_dict_and_defaults_to_the_configured_data_root(data_root: Path) -> None:
    task = operator(data_root, {"rules": []})
    bare = SnapshotOperator(task_id="snapshot", settings=task.settings)

    assert task.snapshot_settings.city == "lisbon"
    assert (bare.data_root, bare.aws_conn_id) == (None, "aws_default")


def test_no_field_is_templated(config: Any) -> None:
    # The source, the window and the contract come from YAML: nothing of the snapshot task is rendered by Jinja.
    assert SnapshotOperator.template_fields == ()
    assert build_dag(config, expectations_dir=REPO / "expectations").get_task("snapshot").template_fields == ()


def test_a_bad_settings_dict_is_refused_naming_the_key(data_root: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown SnapshotSettings key\(s\) \['sourse'\]"):
        _ = SnapshotOperator(task_id="snapshot", settings={"sourse": "x"}).snapshot_settings


def test_with_engine_dask_the_task_takes_a_partitioned_snapshot_on_a_cluster_it_starts(
    data_root: Path, config: Any, caplog: pytest.LogCaptureFixture
) -> None:
    import dataclasses
    import logging

    from airflow_ml.data.snapshot import read_snapshot
    from airflow_ml.data.snapshot_parts import PARTITIONED_KIND
    from tests.support.dask_clusters import LOCAL_CLUSTER

    local = operator(data_root, data_contract(config).to_dict())
    settings = dataclasses.replace(local.snapshot_settings, engine="dask", dask=LOCAL_CLUSTER)
    task = SnapshotOperator(task_id="snapshot", settings=settings.to_dict(), data_root=str(data_root))

    with caplog.at_level(logging.INFO, logger="airflow_ml.ml.dask_client"):
        result = task.execute(run_context(config))  # type: ignore[arg-type]

    manifest = json.loads((Path(result["uri"]) / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["kind"] == PARTITIONED_KIND
    assert len(manifest["parts"]) == len(manifest["partitions"]) > 1  # one part per day's file
    assert not (Path(result["uri"]) / "data.parquet").exists()
    # The client was made by the task, of the LocalCluster training.dask sizes (two workers).
    assert [m for m in caplog.messages if m.startswith("Dask cluster: local, 2 workers (a LocalCluster started")]
    other = local.execute({**run_context(config), "run_id": "manual__local"})  # type: ignore[arg-type]
    assert result["row_count"] == other["row_count"]
    assert read_snapshot(result["uri"]).equals(read_snapshot(other["uri"]))
