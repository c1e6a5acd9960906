"""docs/examples/hand_written_retrain.py, the DAG written by hand from the operators, loads and runs as written.

Loaded by a DagBag (no import error, the tasks and edges its file shows) and run with ``dag.test()`` on a small
world: the demo's Berlin data and a real MLflow store; a run registers a version of its model.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import REPO
from tests.support.airflow_runs import task_states
from tests.support.mlflow_stores import wire_mlflow

pytestmark = pytest.mark.integration
EXAMPLE = REPO / "docs" / "examples" / "hand_written_retrain.py"
DAG_ID = "hand_written.berlin"


@pytest.fixture(scope="module")
def dag_file(dags_dir: Path) -> Iterator[Path]:
    """The example in the session's dags folder (dag.test() serializes the DAGs found there), as a link."""
    link = dags_dir / "hand_written_retrain.py"
    link.symlink_to(EXAMPLE)
    yield link
    link.unlink()


def _dag(dag_file: Path) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(dag_file))
    assert not bag.import_errors, bag.import_errors
    return bag.dags[DAG_ID]


def test_the_example_loads_with_its_tasks_in_order(dag_file: Path) -> None:
    dag = _dag(dag_file)
    # The chain as written, plus the edges that passing an upstream's ``.output`` adds (every task reads snapshot's).
    assert {task.task_id: task.upstream_task_ids for task in dag.tasks} == {
        "snapshot": set(),
        "validate": {"snapshot"},
        "train": {"validate", "snapshot"},
        "register": {"train", "snapshot"},
        "gate": {"register", "snapshot"},
    }


def test_a_run_of_the_example_registers_and_gates_a_version(
    dag_file: Path, airflow_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient

    from airflow_ml.data.demo import write_demo_data

    write_demo_data(tmp_path / "data", cities=["berlin"], batch="initial", scale=0.3)
    monkeypatch.setenv("AIRFLOW_ML_DATA_ROOT", str(tmp_path / "data"))
    store = wire_mlflow(tmp_path / "mlflow", monkeypatch)

    run = _dag(dag_file).test()

    assert str(run.state) == "success", task_states(DAG_ID, run.run_id)
    client = MlflowClient(tracking_uri=store["tracking_uri"], registry_uri=store["tracking_uri"])
    versions = client.search_model_versions("name='hand_written.berlin'")
    assert [str(v.version) for v in versions] == ["1"]
    # The first version has no champion to beat: the gate promotes it once it beats the naive baseline.
    assert str(client.get_model_version_by_alias("hand_written.berlin", "champion").version) == "1"
