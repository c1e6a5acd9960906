"""A run's conf end to end (dag.test(), LightGBM, MLflow): a bad conf is refused before a run exists, or by the
run's first task when a path created the run without checking; a dry run moves no alias.

The world copies the repo's template as ``trigger_conf`` so its DAG (``trigger_conf.lisbon``) and model never
clash with the other modules' worlds in the shared dags folder.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.airflow_runs import task_states
from tests.support.worlds import city_world

pytestmark = pytest.mark.integration
CITY = "lisbon"
TEMPLATE = "trigger_conf"
MODEL = f"{TEMPLATE}.{CITY}"
# Drift is not what this module is about; few rounds keep the runs short.
CITY_EXTRA = "drift:\n  enabled: false\n"
FAST = {"num_boost_round": 20}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, airflow_db: Path, dags_dir: Path) -> Iterator[dict[str, Any]]:
    with city_world(tmp_path_factory.mktemp("trigger_conf"), dags_dir, CITY, extra=CITY_EXTRA, template=TEMPLATE) as w:
        yield w


def _run_ids() -> list[str]:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return sorted(session.scalars(select(DagRun.run_id).where(DagRun.dag_id == MODEL)))


def _sync_dags_folder() -> None:
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db

    manager = DagBundlesManager()
    manager.sync_bundles_to_db()
    bundle = manager.get_bundle("dags-folder")
    bundle.initialize()
    bag = BundleDagBag(dag_folder=bundle.path, bundle_path=bundle.path, bundle_name=bundle.name)
    assert MODEL in bag.dags, bag.import_errors
    sync_bag_to_db(bag, bundle.name, bundle.version)


def _snapshots(world: dict[str, Any]) -> list[Path]:
    return sorted((world["data_root"] / "snapshots").rglob("manifest.json"))


def _aliases(client: Any) -> dict[str, str]:
    return {alias: str(version) for alias, version in client.get_registered_model(MODEL).aliases.items()}


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        ({"num_boost_rounds": 1}, "unknown trigger parameter 'num_boost_rounds': did you mean 'num_boost_round'?"),
        ({"promotion_mode": "force"}, "promotion_mode 'force' needs a reason: set 'reason'"),
        ({"promotion_mode": "force", "reason": "hot\x00fix"}, r"reason holds a control character \(U\+0000"),
    ],
)
def test_dag_test_refuses_a_bad_conf_before_a_run_exists(
    world: dict[str, Any], conf: dict[str, Any], message: str
) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    runs, snapshots = _run_ids(), _snapshots(world)

    with pytest.raises(ParamValidationError, match=message):
        world["build"]().test(run_conf=conf)

    assert _run_ids() == runs
    assert _snapshots(world) == snapshots


def test_the_first_task_refuses_a_conf_that_reached_a_run_unchecked(
    world: dict[str, Any], capfd: pytest.CaptureFixture[str]
) -> None:
    """``airflow dags trigger`` creates the run straight in the database; the plain DAG.test() does the same."""
    from airflow.sdk import DAG

    snapshots = _snapshots(world)

    run = DAG.test(world["build"](), run_conf={"num_boost_rounds": 1, **FAST})

    states = task_states(MODEL, run.run_id)
    assert str(run.state) == "failed"
    assert states["snapshot"] == "failed"
    assert {state for task, state in states.items() if task != "snapshot"} == {"upstream_failed"}
    assert _snapshots(world) == snapshots  # refused before any work
    assert "did you mean 'num_boost_round'?" in capfd.readouterr().out


def test_a_dry_run_registers_its_version_and_moves_no_alias(world: dict[str, Any]) -> None:
    client = world["client"]
    first = world["build"]().test(run_conf=FAST)
    assert str(first.state) == "success"
    before = _aliases(client)
    assert before == {"champion": "1", "challenger": "1"}

    dry = world["build"]().test(run_conf={**FAST, "num_leaves": 7, "promotion_mode": "dry_run"})

    assert str(dry.state) == "success", task_states(MODEL, dry.run_id)
    versions = sorted(int(v.version) for v in client.search_model_versions(f"name='{MODEL}'"))
    assert versions == [1, 2]  # registered, so the gate could score it
    assert _aliases(client) == before
    tags = client.get_model_version(MODEL, "2").tags
    assert tags["gate.decision"] == "dry-run"
    assert task_states(MODEL, dry.run_id)["health_check"] == "skipped"


def test_airflow_dags_test_refuses_a_typo_before_a_run_exists(world: dict[str, Any]) -> None:
    import os
    import subprocess
    import sys

    runs = _run_ids()

    done = subprocess.run(
        [sys.executable, "-m", "airflow", "dags", "test", MODEL, "-c", json.dumps({"num_boost_rounds": 1})],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert done.returncode != 0
    assert "unknown trigger parameter 'num_boost_rounds': did you mean 'num_boost_round'?" in done.stderr + done.stdout
    assert _run_ids() == runs


def test_a_run_made_by_airflow_dags_trigger_stops_at_its_first_task(world: dict[str, Any]) -> None:
    """The CLI's ``dags trigger`` creates the run straight in the database (no api-server): the snapshot refuses it."""
    import os
    import subprocess
    import sys

    def airflow(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "airflow", *args],
            env=dict(os.environ),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    _sync_dags_folder()  # as the DAG processor would have
    runs, snapshots = _run_ids(), _snapshots(world)
    triggered = airflow("dags", "trigger", MODEL, "-c", json.dumps({"num_boost_rounds": 1}))
    assert triggered.returncode == 0, triggered.stderr[-3000:]
    (run_id,) = set(_run_ids()) - set(runs)  # the CLI created it, Params and all

    # As a worker runs it (``tasks test`` reports a task's failure in the log and its state, not its exit code).
    snapshot = airflow("tasks", "test", MODEL, "snapshot", run_id)

    assert task_states(MODEL, run_id)["snapshot"] == "failed"
    assert "did you mean 'num_boost_round'?" in snapshot.stdout + snapshot.stderr
    assert _snapshots(world) == snapshots
