"""Suite files read one by one: JSON errors at their line, unknown suites (airflow_ml.templates.suite_files)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airflow_ml.exceptions import ConfigError
from airflow_ml.templates.suite_files import load_suite


def test_invalid_json_names_the_file_and_line(tmp_path: Path) -> None:
    path = write_suite(tmp_path, "trips", '{\n  "expectations": [\n    {"type": "x",}\n  ]\n}\n')

    with pytest.raises(ConfigError) as info:
        load_suite(tmp_path, "trips")

    assert info.value.file == str(path)
    assert str(path) in str(info.value)
    assert "line 3" in str(info.value)
    assert "JSON" in str(info.value)


def test_unknown_suite_names_the_file_and_the_known_suites(tmp_path: Path) -> None:
    write_suite(tmp_path, "ride_trips", '{"expectations": []}')

    with pytest.raises(ConfigError) as info:
        load_suite(tmp_path, "ride_trip")

    assert str(tmp_path / "ride_trip.json") in str(info.value)
    assert "'ride_trips'" in str(info.value)


def test_suite_without_name_takes_the_file_name(tmp_path: Path) -> None:
    write_suite(tmp_path, "trips", '{"expectations": [{"type": "expect_column_to_exist", "kwargs": {"column": "a"}}]}')

    assert load_suite(tmp_path, "trips")["name"] == "trips"


@pytest.mark.parametrize("content", ["[]", '{"name": "trips"}', '{"expectations": {}}'])
def test_suite_must_hold_a_list_of_expectations(tmp_path: Path, content: str) -> None:
    path = write_suite(tmp_path, "trips", content)

    with pytest.raises(ConfigError) as info:
        load_suite(tmp_path, "trips")

    assert str(path) in str(info.value)
    assert "'expectations'" in str(info.value)


def test_expectation_without_type_is_named_by_index(tmp_path: Path) -> None:
    expectations = [
        {"type": "expect_column_to_exist", "kwargs": {"column": "a"}},
        {"kwargs": {"column": "b"}},
        "expect_column_to_exist",
    ]
    path = write_suite(tmp_path, "trips", json.dumps({"expectations": expectations}))

    with pytest.raises(ConfigError) as info:
        load_suite(tmp_path, "trips")

    assert str(path) in str(info.value)
    assert "expectations[1]" in str(info.value)
    assert "expectations[2]" in str(info.value)
    assert "expectations[0]" not in str(info.value)
    assert "'type'" in str(info.value)


def test_bad_severity_is_quoted(tmp_path: Path) -> None:
    expectations = [{"type": "expect_column_to_exist", "kwargs": {"column": "a"}, "meta": {"severity": "fatal"}}]
    path = write_suite(tmp_path, "trips", json.dumps({"expectations": expectations}))

    with pytest.raises(ConfigError) as info:
        load_suite(tmp_path, "trips")

    assert str(path) in str(info.value)
    assert "expectations[0]: expect_column_to_exist: severity 'fatal'" in str(info.value)
    assert "'warn'" in str(info.value)


def write_suite(folder: Path, name: str, content: str) -> Path:
    path = folder / f"{name}.json"
    path.write_text(content, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("name", "text"), [("trips.yaml", "expectations: []\n"), ("trips.json", '{"expectations": []}')]
)
def test_an_empty_suite_is_refused_with_the_fix(tmp_path: Path, name: str, text: str) -> None:
    (tmp_path / name).write_text(text, encoding="utf-8")

    with pytest.raises(ConfigError) as info:
        load_suite(tmp_path, "trips")

    assert info.value.file == str(tmp_path / name)
    assert "expectations: the list is empty, so this suite would check nothing" in str(info.value)
    assert "list at least one expectation" in str(info.value)


def test_an_empty_sibling_suite_is_refused_too(tmp_path: Path) -> None:
    (tmp_path / "trips.yaml").write_text("expectations:\n  - expect_column_to_exist: {column: a}\n")
    (tmp_path / "trips.porto.yaml").write_text("description: nothing\nexpectations: []\n")

    with pytest.raises(ConfigError, match=r"(?s)trips.porto.yaml.*line 2: expectations: the list is empty.*delete"):
        load_suite(tmp_path, "trips", city="porto")
