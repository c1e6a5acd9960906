"""A conf sent through Airflow's public REST API bypasses the trigger form: the run refuses it all the same.

The API is Airflow's own FastAPI app, served in-process; the DAG reaches it the way the DAG processor
puts it there (the dags-folder bundle parsed and written to the metadata database).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, airflow_api, write_loader

pytestmark = pytest.mark.integration

DAG_ID = "ride_duration.porto"
RUNS = f"/api/v2/dags/{DAG_ID}/dagRuns"


@pytest.fixture(scope="module")
def api(airflow_db: Path, dags_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    import shutil

    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db

    root = tmp_path_factory.mktemp("rest_api")
    (root / "templates").mkdir()
    (root / "cities").mkdir()
    shutil.copy(REPO / "dag_templates" / "templates" / "ride_duration.yaml", root / "templates")
    (root / "cities" / "porto.yaml").write_text("city: porto\ntemplate: ride_duration\ndag:\n  schedule: null\n")
    write_loader(dags_dir, "rest_api", root)

    manager = DagBundlesManager()
    manager.sync_bundles_to_db()
    bundle = manager.get_bundle("dags-folder")
    bundle.initialize()
    bag = BundleDagBag(dag_folder=bundle.path, bundle_path=bundle.path, bundle_name=bundle.name)
    assert DAG_ID in bag.dags, bag.import_errors
    sync_bag_to_db(bag, bundle.name, bundle.version)

    with airflow_api() as client:
        yield client


def _run_count(api: Any) -> int:
    response = api.get(RUNS)
    assert response.status_code == 200, response.text
    return int(response.json()["total_entries"])


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        ({"num_leaves": 1}, "Invalid input for param num_leaves: 1 is less than the minimum of 2"),
        ({"learning_rate": 0}, "Invalid input for param learning_rate: 0 is less than or equal to the minimum of 0"),
        ({"num_boost_round": "many"}, "Invalid input for param num_boost_round: 'many' is not of type"),
        ({"promotion_mode": "always"}, "Invalid input for param promotion_mode: 'always' is not one of"),
        ({"window_start": "last monday"}, "Invalid input for param window_start: 'last monday' is not a 'date'"),
        ({"reason": "x" * 501}, "Invalid input for param reason:"),
    ],
)
def test_the_api_refuses_a_conf_the_form_would_refuse_and_creates_no_run(
    api: Any, conf: dict[str, Any], message: str
) -> None:
    before = _run_count(api)

    response = api.post(RUNS, json={"logical_date": None, "conf": conf})

    assert response.status_code == 400, response.text
    assert response.json()["detail"].startswith(message)
    assert _run_count(api) == before


def test_the_api_queues_a_run_with_a_valid_conf(api: Any) -> None:
    conf = {"num_leaves": 63, "learning_rate": 0.05, "promotion_mode": "dry_run", "window_start": "2026-01-01"}
    before = _run_count(api)

    response = api.post(RUNS, json={"logical_date": None, "conf": conf})

    assert response.status_code == 200, response.text
    assert response.json()["state"] == "queued"
    assert response.json()["conf"] == conf
    assert _run_count(api) == before + 1
