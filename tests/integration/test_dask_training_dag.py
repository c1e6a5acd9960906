"""End to end with engine dask (real Airflow dag.test(), LightGBM, MLflow and a real two-process Dask cluster
reached through a ``dask`` connection): the champion trained on Dask scores raw rows through
``models:/…@champion`` as a locally trained one does; a worker killed while training fails the train task with
a clear error and leaves the champion as it was; the next run completes. Parsing the DAG touches no Dask."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.airflow_runs import task_states
from tests.support.dask_clusters import dask_city, process_cluster
from tests.support.serving_models import champion_holdout, serve_champion
from tests.support.worlds import city_world

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # a Dask cluster per test: make test-slow
CITY = "berlin"
MODEL = f"ride_duration.{CITY}"
DASK = dask_city("dask_test", rounds=40, drift=False)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    with process_cluster() as cluster:
        yield cluster


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, airflow_db: Path, dags_dir: Path, cluster: Any
) -> Iterator[dict[str, Any]]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW_CONN_DASK_TEST", json.dumps({"conn_type": "dask", "host": cluster.scheduler_address}))
        with city_world(tmp_path_factory.mktemp("dask_world"), dags_dir, CITY, extra=DASK) as world:
            yield world


def _champion(client: Any) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(MODEL, "champion").version)
    except MlflowException:
        return None


def test_a_champion_trained_on_dask_scores_raw_rows_through_the_registry(world: dict[str, Any], tmp_path: Path) -> None:
    import numpy as np

    run = world["build"]().test()

    assert str(run.state) == "success", task_states(MODEL, run.run_id)
    client = world["client"]
    champion = client.get_model_version_by_alias(MODEL, "champion")
    train_run = client.get_run(champion.run_id)
    assert train_run.data.params["engine"] == "dask"
    assert train_run.data.params["dask_workers"] == "2"
    # As for a locally trained champion (test_retrain_dag): the registry's model on raw rows predicts what the
    # train task predicted for the holdout with the booster and the preprocessing it logged.
    holdout, served = champion_holdout(client, world["store"]["tracking_uri"], MODEL, tmp_path)
    assert len(served) == len(holdout) > 100
    np.testing.assert_array_equal(np.asarray(served), holdout["prediction"].to_numpy())
    # A level never seen in training and a column the model does not use, as raw rows may have.
    unseen = holdout.drop(columns=["prediction"]).head(20).assign(pickup_zone="nowhere", extra_column=1)
    assert np.isfinite(np.asarray(serve_champion(world["store"]["tracking_uri"], MODEL, unseen))).all()


def test_a_worker_killed_while_training_fails_the_task_and_keeps_the_champion(
    world: dict[str, Any], cluster: Any
) -> None:
    client = world["client"]
    before = _champion(client)
    assert before is not None  # the first test's champion
    from distributed import Client

    with Client(cluster.scheduler_address, set_as_default=False) as probe:
        worker_pids = sorted(probe.run(os.getpid).values())

    class KillOnTraining(logging.Handler):
        fired = False

        def emit(self, record: logging.LogRecord) -> None:
            if not self.fired and record.getMessage().startswith("lightgbm.dask:"):
                self.fired = True
                os.kill(worker_pids[0], signal.SIGKILL)

    handler = KillOnTraining()
    logger = logging.getLogger("airflow_ml.ml.dask_train")
    logger.addHandler(handler)
    try:
        failed = world["build"]().test()
    finally:
        logger.removeHandler(handler)

    assert handler.fired
    states = task_states(MODEL, failed.run_id)
    assert states["train"] == "failed"
    assert states["register"] != "success"
    assert _champion(client) == before
    experiment = client.get_experiment_by_name(MODEL)
    runs = client.search_runs([experiment.experiment_id], f"tags.`airflow.run_id` = '{failed.run_id}'")
    assert [r.info.status for r in runs if r.data.tags.get("airflow.task_id") == "train"] == ["FAILED"]

    with Client(cluster.scheduler_address, set_as_default=False) as probe:
        probe.wait_for_workers(2, timeout=60)  # the nanny restarts the killed worker
    again = world["build"]().test()
    assert task_states(MODEL, again.run_id)["train"] == "success"


def test_parsing_a_dask_dag_imports_no_dask_and_starts_no_client(world: dict[str, Any], dags_dir: Path) -> None:
    # Only this world's loader: the session's dags folder also holds other tests' loaders, whose imports are theirs.
    loader = dags_dir / f"world_{Path(world['data_root']).parent.name}.py"
    script = textwrap.dedent(
        f"""
        import json, sys
        from airflow.dag_processing.dagbag import DagBag
        bag = DagBag(dag_folder={str(loader)!r})
        if {MODEL!r} not in bag.dags:
            sys.exit(f"not parsed: {{bag.import_errors}}")
        dag = bag.dags[{MODEL!r}]
        print(json.dumps({{
            "engine": dag.get_task("train").settings["engine"],
            "loaded": sorted(m for m in ("dask", "distributed", "lightgbm") if m in sys.modules),
        }}))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False, env=os.environ)
    assert done.returncode == 0, done.stderr[-3000:]
    parsed = json.loads(done.stdout.strip().splitlines()[-1])
    assert parsed["engine"] == "dask"
    assert parsed["loaded"] == []  # no client can exist without distributed imported
