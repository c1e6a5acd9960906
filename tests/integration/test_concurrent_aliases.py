"""Two cities promote, are health-checked and roll back at the same time without touching each other's aliases.

Each city's runs are one process, as on two workers, each with its own Airflow metadata database; both share
one MLflow tracking store and registry on the machine's PostgreSQL, as a fleet does.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support import REPO
from tests.support.airflow_homes import make_worker_home, worker_env
from tests.support.mlflow_stores import shared_registry

pytestmark = [pytest.mark.integration, pytest.mark.services]
TEMPLATE = "ride_duration_cc"
CITIES = ("berlin", "lisbon")

# A first promotion, then a forced one (champion moves again, the first becomes previous-champion), then a
# rollback through the fleet's rollback DAG: three alias moves per city, interleaved with the other city's.
RUN = textwrap.dedent(
    """
    import json, sys
    from airflow_ml.factory import register_dags
    from airflow_ml.factory.rollback import build_rollback_dag

    root, city = sys.argv[1:3]
    build = lambda: register_dags({{}}, templates_root=root, expectations_dir={expectations!r})[f"{template}.{{city}}"]
    states = [str(build().test().state)]
    states.append(str(build().test(run_conf={{"promotion_mode": "force", "reason": "second"}}).state))
    rollback = build_rollback_dag().test(run_conf={{"model": f"{template}.{{city}}", "reason": "concurrent rollback"}})
    states.append(str(rollback.state))
    print(json.dumps(states))
    """
).format(expectations=str(REPO / "expectations"), template=TEMPLATE)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from airflow_ml.data.demo import write_demo_data

    root = tmp_path_factory.mktemp("concurrent_aliases")
    templates = root / "templates_root"
    (templates / "templates").mkdir(parents=True)
    (templates / "cities").mkdir()
    template = (REPO / "dag_templates" / "templates" / "ride_duration.yaml").read_text(encoding="utf-8")
    (templates / "templates" / f"{TEMPLATE}.yaml").write_text(
        template.replace("template: ride_duration\n", f"template: {TEMPLATE}\n"), encoding="utf-8"
    )
    for city in CITIES:
        (templates / "cities" / f"{city}.yaml").write_text(
            f"city: {city}\ntemplate: {TEMPLATE}\ndag:\n  retries: 0\n  schedule: null\n", encoding="utf-8"
        )
        make_worker_home(
            root / f"airflow_{city}",
            "from airflow_ml.factory import register_dags\n"
            "from airflow_ml.factory.rollback import build_rollback_dag\n"
            f"register_dags(globals(), templates_root={str(templates)!r}, "
            f"expectations_dir={str(REPO / 'expectations')!r})\n"
            "rollback_dag = build_rollback_dag()\n",
        )
    data_root = root / "data"
    write_demo_data(data_root, cities=list(CITIES), batch="initial", scale=0.3)
    with shared_registry() as url:
        yield {"root": root, "templates": templates, "data_root": data_root, "tracking_uri": url}
    shutil.rmtree(root, ignore_errors=True)


def test_two_cities_moving_their_champions_at_once_never_touch_each_others_aliases(world: dict[str, Any]) -> None:
    from mlflow import MlflowClient

    from airflow_ml.ml.model_registry import CHALLENGER, CHAMPION, PREVIOUS_CHAMPION, version_by_alias

    store = {"tracking_uri": world["tracking_uri"], "artifact_root": f"file://{world['root']}/art"}
    running = {}
    for city in CITIES:
        env = worker_env(
            world["root"] / f"airflow_{city}",
            AIRFLOW_ML_DATA_ROOT=str(world["data_root"]),
            AIRFLOW_CONN_MLFLOW_DEFAULT=json.dumps({"conn_type": "mlflow", "extra": store}),
        )
        running[city] = subprocess.Popen(
            [sys.executable, "-c", RUN, str(world["templates"]), city],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    for city, process in running.items():
        out, err = process.communicate(timeout=900)
        assert process.returncode == 0, (city, err[-3000:])
        assert json.loads(out.strip().splitlines()[-1]) == ["success", "success", "success"], (city, err[-3000:])

    client = MlflowClient(tracking_uri=world["tracking_uri"], registry_uri=world["tracking_uri"])
    for city in CITIES:
        model = f"{TEMPLATE}.{city}"
        aliases = {alias: version_by_alias(client, model, alias) for alias in (CHAMPION, PREVIOUS_CHAMPION, CHALLENGER)}
        # v1 promoted, v2 forced over it, then rolled back: v1 serves again, nothing older to go back to.
        assert {alias: v and str(v.version) for alias, v in aliases.items()} == {
            CHAMPION: "1",
            PREVIOUS_CHAMPION: None,
            CHALLENGER: "2",
        }, city
        for version in client.search_model_versions(f"name='{model}'"):
            assert version.tags["airflow_ml.city"] == city
            assert version.tags["rollback.reason"] == "concurrent rollback"
            assert version.tags["health.passed"] == "true"
        assert len(client.search_model_versions(f"name='{model}'")) == 2
