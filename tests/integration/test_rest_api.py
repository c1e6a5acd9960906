"""A conf sent through Airflow's public REST API bypasses the trigger form: the run refuses it all the same.

The API is Airflow's own FastAPI app, served in-process with the repo's ``plugins/`` as its plugins folder (the
``airflow_ml_run_conf`` plugin refuses what Airflow's Params cannot, unknown keys, ``force`` without a reason,
``60.0`` for an integer, and names every bad value as the run's tasks would);
the DAG reaches it the way the DAG processor puts it there (the dags-folder bundle parsed and written to the
metadata database).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import REPO
from tests.support.airflow_runs import airflow_api
from tests.support.worlds import write_loader

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

    with airflow_api(plugins_folder=REPO / "plugins") as client:
        yield client


def _run_count(api: Any) -> int:
    response = api.get(RUNS)
    assert response.status_code == 200, response.text
    return int(response.json()["total_entries"])


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        ({"num_leaves": 1}, "num_leaves=1: Input should be greater than or equal to 2 (the bound of the template's"),
        ({"learning_rate": 0}, "learning_rate=0: Input should be greater than 0 (the bound of the template's"),
        ({"num_boost_round": "many"}, "num_boost_round: expected an integer, got 'many'"),
        ({"promotion_mode": "always"}, "promotion_mode 'always' is not a mode; use one of ['auto'"),
        ({"window_start": "last monday"}, "window_start: expected a date YYYY-MM-DD, got 'last monday'"),
        ({"reason": "x" * 501}, "reason: 501 characters, at most 500; shorten it"),
        # What Airflow's own check of the Params lets through: Draft 7 counts 60.0 as an integer.
        ({"num_boost_round": 60.0}, "num_boost_round: expected an integer, got 60.0"),
        ({"window_end": "9999-12-31"}, "window_end 9999-12-31 is outside 1970-01-01..2200-12-31"),
    ],
)
def test_the_api_refuses_a_bad_value_naming_the_param_and_its_bound_and_creates_no_run(
    api: Any, conf: dict[str, Any], message: str
) -> None:
    before = _run_count(api)

    response = api.post(RUNS, json={"logical_date": None, "conf": conf})

    assert response.status_code == 400, response.text
    detail = response.json()["detail"]
    assert detail.startswith(f"the conf of a run of {DAG_ID} is refused, nothing runs: ")
    assert message in detail
    assert _run_count(api) == before


def test_the_api_queues_a_run_with_a_valid_conf(api: Any) -> None:
    conf = {"num_leaves": 63, "learning_rate": 0.05, "promotion_mode": "dry_run", "window_start": "2026-01-01"}
    before = _run_count(api)

    response = api.post(RUNS, json={"logical_date": None, "conf": conf})

    assert response.status_code == 200, response.text
    assert response.json()["state"] == "queued"
    assert response.json()["conf"] == conf
    assert _run_count(api) == before + 1


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        ({"num_boost_rounds": 1}, "unknown trigger parameter 'num_boost_rounds': did you mean 'num_boost_round'?"),
        ({"promotion_mode": "force"}, "promotion_mode 'force' needs a reason: set 'reason'"),
        ({"promotion_mode": "force", "reason": "  "}, "promotion_mode 'force' needs a reason"),
        ({"reason": "hot\x00fix"}, "reason holds a control character (U+0000 at position 3); remove it"),
        ({"reason": "\x1b[31mred"}, "reason holds a control character (U+001B at position 0)"),
    ],
)
def test_the_api_refuses_what_params_cannot_see_naming_the_fix_and_creates_no_run(
    api: Any, conf: dict[str, Any], message: str
) -> None:
    before = _run_count(api)

    response = api.post(RUNS, json={"logical_date": None, "conf": conf})

    assert response.status_code == 400, response.text
    detail = response.json()["detail"]
    assert detail.startswith(f"the conf of a run of {DAG_ID} is refused, nothing runs: ")
    assert message in detail
    assert _run_count(api) == before


def test_a_backfill_with_an_unknown_conf_key_is_refused_before_it_exists(api: Any) -> None:
    body = {
        "dag_id": DAG_ID,
        "from_date": "2026-01-01T00:00:00Z",
        "to_date": "2026-01-02T00:00:00Z",
        "dag_run_conf": {"learning_rte": 0.1},
    }

    response = api.post("/api/v2/backfills", json=body)

    assert response.status_code == 400, response.text
    assert "unknown trigger parameter 'learning_rte': did you mean 'learning_rate'?" in response.json()["detail"]
    assert api.get("/api/v2/backfills", params={"dag_id": DAG_ID}).json()["total_entries"] == 0


def test_a_caller_airflow_refuses_gets_airflows_own_answer_not_the_dags_params(api: Any) -> None:
    # An explicit credential wins over the test app's all-admins one: this caller is nobody.
    forged = {"Authorization": "Bearer not-a-token"}
    before = _run_count(api)

    response = api.post(RUNS, json={"logical_date": None, "conf": {"num_boost_rounds": 1}}, headers=forged)

    assert response.status_code == 403, response.text
    assert response.json()["detail"] == "Invalid JWT token"
    assert _run_count(api) == before
