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
