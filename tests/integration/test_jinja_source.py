"""Jinja in a YAML value is never rendered, even when it gets past the YAML check: a real run's snapshot task.

The city's ``dataset.source`` asks Jinja for the MLflow connection's password. The loader refuses ``{{`` in YAML,
so the DAG file here builds the config directly (``model_copy``, no validation) as a hostile or buggy path would.
The snapshot task must read the literal folder and never see the password; the other tasks are marked success.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import REPO
from tests.support.airflow_runs import task_states
from tests.support.worlds import copy_template

pytestmark = pytest.mark.integration
CITY = "berlin"
TEMPLATE = "jinja_source"
DAG_ID = f"{TEMPLATE}.{CITY}"
SECRET = "pw-of-the-mlflow-connection"
SOURCE = "{data_root}/raw/{{ conn.mlflow_default.password }}/{city}"
# What str.format makes of SOURCE's doubled braces: the folder the literal pattern names.
LITERAL_FOLDER = "{ conn.mlflow_default.password }"


def hostile_dag(root: str) -> Any:
    """The city's DAG built from its config with ``SOURCE`` put in directly, past every YAML check."""
    from airflow_ml.factory.builder import build_dag
    from airflow_ml.templates.loader import load_city_configs

    (config,), errors = load_city_configs(Path(root))
    assert not errors, errors
    dataset = config.dataset.model_copy(update={"source": SOURCE})
    return build_dag(config.model_copy(update={"dataset": dataset}), expectations_dir=REPO / "expectations")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, airflow_db: Path, dags_dir: Path) -> Iterator[dict[str, Any]]:
    from airflow_ml.data.demo import write_demo_data

    root = tmp_path_factory.mktemp("jinja_source")
    copy_template(root, TEMPLATE)
    (root / "cities" / f"{CITY}.yaml").write_text(
        f"city: {CITY}\ntemplate: {TEMPLATE}\ndag:\n  retries: 0\n  schedule: null\n", encoding="utf-8"
    )
    write_demo_data(root / "data", cities=[CITY], batch="initial", scale=0.1)
    shutil.move(root / "data" / "raw" / "trips", root / "data" / "raw" / LITERAL_FOLDER)
    # dag.test() finds the DAG it runs in the dags folder, so a DAG file builds it there too (Airflow's safe
    # mode reads only the files that mention "airflow" and "dag").
    (dags_dir / "jinja_source.py").write_text(
        "# an airflow DAG file\n"
        f"from tests.integration.test_jinja_source import hostile_dag\ndag = hostile_dag({str(root)!r})\n",
        encoding="utf-8",
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW_ML_DATA_ROOT", str(root / "data"))
        connection = {"conn_type": "mlflow", "password": SECRET, "extra": {"tracking_uri": f"file://{root}/mlruns"}}
        mp.setenv("AIRFLOW_CONN_MLFLOW_DEFAULT", json.dumps(connection))
        yield {"root": root}
    (dags_dir / "jinja_source.py").unlink()


def test_the_snapshot_reads_the_literal_source_and_the_password_never_shows(
    world: dict[str, Any], capfd: pytest.CaptureFixture[str]
) -> None:
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.utils.session import create_session
    from sqlalchemy import select

    run = hostile_dag(str(world["root"])).test(mark_success_pattern=r"^(?!snapshot$)")

    out = capfd.readouterr()
    assert task_states(DAG_ID, run.run_id)["snapshot"] == "success"
    assert SECRET not in out.out + out.err
    with create_session() as session:
        rendered = session.scalars(
            select(RenderedTaskInstanceFields.rendered_fields).where(
                RenderedTaskInstanceFields.dag_id == DAG_ID, RenderedTaskInstanceFields.run_id == run.run_id
            )
        ).all()
    assert SECRET not in json.dumps(list(rendered))
    (manifest,) = (world["root"] / "data" / "snapshots").rglob("manifest.json")
    source = json.loads(manifest.read_text())["source"]
    assert source.endswith(f"/raw/{LITERAL_FOLDER}/{CITY}")  # the folder the literal pattern names
    assert json.loads(manifest.read_text())["row_count"] > 0
