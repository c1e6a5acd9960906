"""Quarantine: two cities retrain side by side, one on broken data; only that one stops, and its champion stays.

The broken batch's files call distance_km "distance": the snapshot's dataset contract refuses them, naming the
files, before any other work.

Each city's run is its own process, as on two workers, with its own Airflow metadata database; both share
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
CITIES = ("berlin", "lisbon")

RUN = textwrap.dedent(
    """
    import dataclasses, json, sys
    from airflow_ml.cli.demo_run import summarize
    from airflow_ml.factory import register_dags

    root, data_root, city, batch = sys.argv[1:5]
    dag = register_dags({{}}, templates_root=root, expectations_dir={expectations!r})[f"ride_duration.{{city}}"]
    run = dag.test()
    summary = summarize(data_root, "ride_duration", city, run.run_id, batch, str(run.state))
    print(json.dumps(dataclasses.asdict(summary)))
    """
).format(expectations=str(REPO / "expectations"))


def _night(world: dict[str, Any], batch: dict[str, str]) -> dict[str, dict[str, str]]:
    """Run every city's DAG at the same time, each in its own process; return each run's summary."""
    running = {}
    for city in CITIES:
        env = worker_env(
            world["root"] / f"airflow_{city}",
            AIRFLOW_ML_DATA_ROOT=str(world["data_root"]),
            AIRFLOW_CONN_MLFLOW_DEFAULT=json.dumps({"conn_type": "mlflow", "extra": world["store"]}),
        )
        args = [str(world["root"] / "templates_root"), str(world["data_root"]), city, batch[city]]
        running[city] = subprocess.Popen(
            [sys.executable, "-c", RUN, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    results = {}
    for city, process in running.items():
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err[-3000:]
        results[city] = json.loads(out.strip().splitlines()[-1])
        results[city]["log"] = out + err  # dag.test() prints the task logs
        # Task logs, for a failure's story: the last error lines of each run.
        results[city]["errors"] = [line for line in err.splitlines() if "Error" in line or "error" in line][-8:]
    return results


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from airflow_ml.data.demo import write_demo_data

    root = tmp_path_factory.mktemp("quarantine")
    templates = root / "templates_root"
    (templates / "templates").mkdir(parents=True)
    (templates / "cities").mkdir()
    shutil.copy(REPO / "dag_templates" / "templates" / "ride_duration.yaml", templates / "templates")
    # As in the shipped city files: the later batch's new weeks are warmer (spring), a seasonal drift that warns.
    seasonal = "drift:\n  features:\n    temperature_c: {psi: {error: null}}\n"
    for city in CITIES:
        (templates / "cities" / f"{city}.yaml").write_text(
            f"city: {city}\ntemplate: ride_duration\ndag:\n  retries: 0\n  schedule: null\n{seasonal}", encoding="utf-8"
        )
        make_worker_home(
            root / f"airflow_{city}",
            "from airflow_ml.factory import register_dags\n"
            f"register_dags(globals(), templates_root={str(templates)!r}, "
            f"expectations_dir={str(REPO / 'expectations')!r})\n",
        )
    data_root = root / "data"
    write_demo_data(data_root, cities=list(CITIES), batch="initial", scale=0.3)
    with shared_registry() as url:
        yield {
            "root": root,
            "data_root": data_root,
            "store": {"tracking_uri": url, "artifact_root": f"file://{root}/art"},
        }


def test_a_broken_city_stops_alone_and_keeps_its_champion(world: dict[str, Any]) -> None:
    from mlflow import MlflowClient

    from airflow_ml.data.demo import write_demo_data

    first = _night(world, {"berlin": "initial", "lisbon": "initial"})
    assert {city: r["state"] for city, r in first.items()} == {"berlin": "success", "lisbon": "success"}, {
        city: r["errors"] for city, r in first.items()
    }

    write_demo_data(world["data_root"], cities=["berlin"], batch="later", scale=0.3)
    broken = write_demo_data(world["data_root"], cities=["lisbon"], batch="broken", scale=0.3)
    second = _night(world, {"berlin": "later", "lisbon": "broken"})

    client = MlflowClient(tracking_uri=world["store"]["tracking_uri"], registry_uri=world["store"]["tracking_uri"])
    lisbon, berlin = second["lisbon"], second["berlin"]
    assert lisbon["state"] == "failed"
    assert lisbon["decision"] == "not reached"
    assert lisbon["validation"] == "-", "stopped at the snapshot, before validation"
    assert "\n" not in lisbon["reason"]
    # The snapshot task's refusal: in the summary (its refusal.json beside where the snapshot would be) and the log.
    assert lisbon["reason"].startswith("snapshot refused: ")
    assert "distance_km" in lisbon["reason"]
    assert "column 'distance_km' is missing from 3 of the " in lisbon["log"]
    assert all(repr(str(path)) in lisbon["log"] for path in broken)
    assert str(client.get_model_version_by_alias("ride_duration.lisbon", "champion").version) == "1"
    assert len(client.search_model_versions("name='ride_duration.lisbon'")) == 1, "nothing registered for lisbon"

    assert berlin["state"] == "success"
    assert berlin["version"] == "2"
    assert berlin["decision"] in {"promoted", "kept"}
    assert len(client.search_model_versions("name='ride_duration.berlin'")) == 2
