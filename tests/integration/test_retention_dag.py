"""The daily snapshot retention DAG with dag.test(): a dry run deletes nothing, an unreadable registry fails the task
and deletes nothing, a real run deletes exactly the unregistered snapshots beyond the newest ``keep_last``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.support.airflow_runs import task_states
from tests.support.mlflow_stores import wire_mlflow
from tests.support.worlds import copy_template

pytestmark = pytest.mark.integration
DAG_ID = "airflow_ml.snapshot_retention_test"
TEMPLATE = "ride_keep"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, airflow_db: Path, dags_dir: Path) -> Iterator[dict[str, Any]]:
    from mlflow import MlflowClient

    from airflow_ml.data.snapshot import MANIFEST, take_snapshot

    root = tmp_path_factory.mktemp("retention")
    templates = root / "dag_templates"
    copy_template(templates, TEMPLATE, "retention:\n  keep_last: 1\n")
    (templates / "cities" / "oslo.yaml").write_text(f"city: oslo\ntemplate: {TEMPLATE}\n", encoding="utf-8")
    (dags_dir / "retention_test.py").write_text(
        "from airflow_ml.factory.maintenance import build_retention_dag\n"
        f"dag = build_retention_dag(templates_root={str(templates)!r}, dag_id={DAG_ID!r}, schedule=None, retries=0)\n"
    )
    source = root / "data" / "raw" / "date=2026-01-05"
    source.mkdir(parents=True)
    pd.DataFrame({"x": [1.0], "y": [2.0]}).to_parquet(source / "part.parquet")
    snapshots = {}
    for hour, run in enumerate(("s1", "s2", "s3", "s4")):
        manifest = take_snapshot(
            str(source.parent), str(root / "data" / "snapshots"), template=TEMPLATE, city="oslo", run_id=run
        )
        os.utime(Path(manifest.uri) / MANIFEST, (1_767_000_000 + hour * 3600,) * 2)
        snapshots[run] = Path(manifest.uri)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW_ML_DATA_ROOT", str(root / "data"))
        store = wire_mlflow(root / "mlflow", mp)
        client = MlflowClient(tracking_uri=store["tracking_uri"], registry_uri=store["tracking_uri"])
        client.create_registered_model(f"{TEMPLATE}.oslo")
        for run, alias in (("s1", "champion"), ("s2", "challenger")):
            tags = {"airflow_ml.snapshot_uri": str(snapshots[run])}
            version = client.create_model_version(f"{TEMPLATE}.oslo", str(root), tags=tags)
            client.set_registered_model_alias(f"{TEMPLATE}.oslo", alias, version.version)
        yield {"snapshots": snapshots, "templates": templates}


def _run(world: dict[str, Any], conf: dict[str, Any]) -> dict[str, Any]:
    from airflow_ml.factory.maintenance import build_retention_dag

    dag = build_retention_dag(templates_root=world["templates"], dag_id=DAG_ID, schedule=None, retries=0)
    run = dag.test(run_conf=conf)
    return {"state": str(run.state), "tasks": task_states(DAG_ID, run.run_id)}


def _left(world: dict[str, Any]) -> list[str]:
    return sorted(run for run, folder in world["snapshots"].items() if folder.exists())


def test_a_dry_run_deletes_nothing(world: dict[str, Any], capfd: pytest.CaptureFixture[str]) -> None:
    run = _run(world, {"dry_run": True})

    assert run["tasks"] == {"prune_snapshots": "success"}
    assert _left(world) == ["s1", "s2", "s3", "s4"]
    logged = "".join(capfd.readouterr())
    assert f"would delete {world['snapshots']['s3']}  not registered, older than the newest 1" in logged
    assert "4 snapshot(s): kept 3, would delete 1 (dry run: nothing deleted)" in logged


def test_an_unreadable_registry_fails_the_task_and_deletes_nothing(
    world: dict[str, Any], capfd: pytest.CaptureFixture[str]
) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        mp.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
        mp.setenv("AIRFLOW_CONN_MLFLOW_DEFAULT", json.dumps({"conn_type": "mlflow", "host": "127.0.0.1", "port": 9}))
        run = _run(world, {})

    assert run["tasks"] == {"prune_snapshots": "failed"}
    assert _left(world) == ["s1", "s2", "s3", "s4"]
    logged = "".join(capfd.readouterr())
    assert "PruneRefused: cannot read the model registry" in logged
    assert "nothing was pruned" in logged


def test_a_run_keeps_the_registered_snapshots_and_the_newest_other(world: dict[str, Any]) -> None:
    run = _run(world, {})

    assert run["tasks"] == {"prune_snapshots": "success"}
    assert _left(world) == ["s1", "s2", "s4"]  # champion, challenger, the newest unregistered (keep_last: 1)
