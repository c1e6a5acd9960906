"""The retraining DAG against MLflow with its backend store and registry on the machine's PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import REPO
from tests.support.mlflow_stores import wire_mlflow
from tests.support.worlds import make_city_world

pytestmark = [pytest.mark.integration, pytest.mark.services]


def test_first_run_registers_the_champion_in_a_postgresql_registry(
    tmp_path: Path, airflow_db: Path, dags_dir: Path, postgres_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient

    from airflow_ml.factory import register_dags

    data_root = make_city_world(tmp_path / "world", dags_dir, "berlin", scale=0.2)
    monkeypatch.setenv("AIRFLOW_ML_DATA_ROOT", str(data_root))
    wire_mlflow(tmp_path / "mlflow", monkeypatch, tracking_uri=postgres_database)
    dag = register_dags({}, templates_root=tmp_path / "world", expectations_dir=REPO / "expectations")[
        "ride_duration.berlin"
    ]

    run = dag.test()

    assert str(run.state) == "success"
    client = MlflowClient(tracking_uri=postgres_database, registry_uri=postgres_database)
    champion = client.get_model_version_by_alias("ride_duration.berlin", "champion")
    assert str(champion.version) == "1"
    assert champion.tags["gate.decision"] == "promoted"
    assert client.get_run(champion.run_id).data.tags["airflow.run_id"] == run.run_id
