"""The city a command names, and the registry client it reads (airflow_ml.cli.city_lookup)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from airflow_ml.cli.city_lookup import CityNotFound, find_city, registry_client


def add_city(root: Path, city: str, template: str = "ride_duration") -> None:
    (root / "cities" / f"{city}.yaml").write_text(f"city: {city}\ntemplate: {template}\n", encoding="utf-8")


def test_a_city_is_found_by_its_id_or_its_dag_id(root: Path) -> None:
    add_city(root, "berlin")

    assert find_city(root, "berlin").dag_id == "ride_duration.berlin"
    assert find_city(root, "ride_duration.berlin").city == "berlin"


def test_an_unknown_city_names_the_known_ones_and_the_broken_files(root: Path) -> None:
    add_city(root, "berlin")
    (root / "cities" / "porto.yaml").write_text("city: porto\ntemplate: nowhere\n", encoding="utf-8")

    with pytest.raises(CityNotFound) as missing:
        find_city(root, "paris")
    assert str(missing.value) == (
        f"no city 'paris' in {root}/cities; known: ['berlin']; 1 city file(s) do not load (airflow-ml lint {root})"
    )


def test_a_city_of_two_templates_needs_its_dag_id(root: Path) -> None:
    shutil.copy(root / "templates" / "ride_duration.yaml", root / "templates" / "taxi_fare.yaml")
    add_city(root, "berlin")
    (root / "cities" / "taxi").mkdir()
    (root / "cities" / "taxi" / "berlin.yaml").write_text("city: berlin\ntemplate: taxi_fare\n", encoding="utf-8")

    with pytest.raises(CityNotFound, match=r"'berlin' is a city of several templates; name one of"):
        find_city(root, "berlin")
    assert find_city(root, "taxi_fare.berlin").template == "taxi_fare"


def test_a_tracking_uri_makes_a_client_of_that_store(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = registry_client(uri, "mlflow_default")
    assert client.tracking_uri == uri
    assert list(client.search_registered_models()) == []  # the registry is that store too


def test_a_registry_through_airflows_connection_adds_no_alembic_lines_to_the_output(tmp_path: Path) -> None:
    # With MLflow's own logging off (MLFLOW_CONFIGURE_LOGGING=false, a user's choice or a task's), alembic's INFO
    # lines ("Context impl SQLiteImpl.") came out on the command's stdout, where `airflow-ml serving` answers.
    import json
    import subprocess
    import sys

    from tests.support.project import clean_env

    store = f"sqlite:///{tmp_path}/mlflow.db"
    conn = {"conn_type": "mlflow", "extra": {"tracking_uri": store, "artifact_root": f"file://{tmp_path}/artifacts"}}
    code = (
        "from airflow_ml.cli.city_lookup import registry_client\n"
        "print('models:', list(registry_client(None, 'mlflow_default').search_registered_models()))\n"
    )
    env = clean_env(
        AIRFLOW_HOME=str(tmp_path / "airflow"),
        AIRFLOW_CONN_MLFLOW_DEFAULT=json.dumps(conn),
        MLFLOW_CONFIGURE_LOGGING="false",
    )
    for _ in range(2):  # the first use creates the store; the second only checks its schema
        done = subprocess.run(
            [sys.executable, "-c", code],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert done.stdout.splitlines() == ["models: []"], done.stdout[-3000:]
        assert "alembic" not in done.stderr, done.stderr[-3000:]
