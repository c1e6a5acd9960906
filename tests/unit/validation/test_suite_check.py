"""Suites as files: the YAML form, city sibling files and overrides, and checks against GX and the template."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from airflow_ml.cli import main
from airflow_ml.exceptions import ConfigError
from airflow_ml.templates.suite_files import expectation_key, load_suite, suite_file
from airflow_ml.validation.suite_check import check_suite
from tests.support import REPO

YAML_SUITE = """\
description: Trips, one row per trip.
expectations:
  - expect_table_row_count_to_be_between: {min_value: 10}
  - expect_column_values_to_be_between: {column: duration_min, min_value: 0.5, max_value: 600}
    severity: warn
    notes: longer trips are data errors
  - type: expect_column_values_to_not_be_null
    kwargs: {column: pickup_at}
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "trips.yaml").write_text(YAML_SUITE, encoding="utf-8")
    return tmp_path


def test_the_yaml_form_becomes_a_gx_suite_that_remembers_each_line(folder: Path) -> None:
    suite = load_suite(folder, "trips")

    assert suite["name"] == "trips"
    assert suite["meta"]["description"] == "Trips, one row per trip."
    assert [e["type"] for e in suite["expectations"]] == [
        "expect_table_row_count_to_be_between",
        "expect_column_values_to_be_between",
        "expect_column_values_to_not_be_null",
    ]
    between = suite["expectations"][1]
    assert between["kwargs"] == {"column": "duration_min", "min_value": 0.5, "max_value": 600}
    assert between["meta"] == {
        "severity": "warn",
        "notes": "longer trips are data errors",
        "source": f"{folder / 'trips.yaml'}:4",
    }
    assert suite["expectations"][2]["meta"]["severity"] == "error"


def test_a_city_sibling_file_and_the_city_file_override_by_type_and_column(folder: Path) -> None:
    (folder / "trips.porto.yaml").write_text(
        "expectations:\n"
        "  - expect_column_values_to_be_between: {column: duration_min, min_value: 1, max_value: 240}\n"
        "  - expect_column_values_to_be_between: {column: distance_km, min_value: 0, max_value: 80}\n",
        encoding="utf-8",
    )
    overrides = [{"expect_table_row_count_to_be_between": {"min_value": 2}, "severity": "warn"}]

    porto = load_suite(folder, "trips", city="porto", overrides=overrides)
    lisbon = load_suite(folder, "trips", city="lisbon")

    by_key = {expectation_key(e): e for e in porto["expectations"]}
    assert len(porto["expectations"]) == 4, "two replaced in place, one added"
    assert by_key[("expect_column_values_to_be_between", '"duration_min"')]["kwargs"]["max_value"] == 240
    assert by_key[("expect_column_values_to_be_between", '"duration_min"')]["meta"]["source"].endswith(
        "trips.porto.yaml:2"
    )
    assert by_key[("expect_column_values_to_be_between", '"distance_km"')]["kwargs"]["max_value"] == 80
    assert by_key[("expect_table_row_count_to_be_between", "")]["kwargs"] == {"min_value": 2}
    assert by_key[("expect_table_row_count_to_be_between", "")]["meta"]["source"] == "the city file expectations[0]"
    assert lisbon == load_suite(folder, "trips"), "another city's file never applies"


def test_two_files_for_one_suite_are_refused(folder: Path) -> None:
    (folder / "trips.json").write_text('{"expectations": []}', encoding="utf-8")

    with pytest.raises(ConfigError, match=r"defined by \['trips.yaml', 'trips.json'\]; keep one"):
        suite_file(folder, "trips")


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (
            "  - expect_column_to_exist: {column: a}\n    expect_column_values_to_be_unique: {column: a}\n",
            "exactly one",
        ),
        ("  - expect_column_to_exist: {column: a}\n    severity: fatal\n", "severity 'fatal' is not one of"),
        ("  - expect_column_to_exist: [a]\n", "the arguments must be a mapping"),
        ("  - kwargs: {column: a}\n", "needs a 'type'"),
        ("  - check_column: {column: a}\n", "exactly one expectation"),
    ],
)
def test_malformed_yaml_expectations_name_file_and_line(tmp_path: Path, item: str, message: str) -> None:
    path = tmp_path / "trips.yaml"
    path.write_text("expectations:\n  - expect_column_to_exist: {column: b}\n" + item, encoding="utf-8")

    with pytest.raises(ConfigError) as info:
        load_suite(tmp_path, "trips")

    assert info.value.file == str(path)
    assert info.value.problems[0].startswith("line 3: ")
    assert message in info.value.problems[0]


def test_invalid_yaml_names_the_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "trips.yaml").write_text("expectations:\n  - expect_column_to_exist: {column: a\n", encoding="utf-8")

    with pytest.raises(ConfigError, match=r"(?s)trips.yaml.*line 3: invalid YAML"):
        load_suite(tmp_path, "trips")


def test_check_suite_reports_unknown_types_bad_arguments_and_unknown_columns(folder: Path) -> None:
    (folder / "bad.yaml").write_text(
        "expectations:\n"
        "  - expect_column_values_to_be_betwen: {column: duration_min, min_value: 1}\n"
        "  - expect_column_values_to_be_between: {column: duration_min, mostly: 2, min_value: 1}\n"
        "  - expect_column_values_to_not_be_null: {column: durration}\n"
        "  - expect_column_pair_values_a_to_be_greater_than_b: {column_A: duration_min, column_B: distanse_km}\n"
        "  - expect_column_values_to_not_be_null: {column: duration_min}\n",
        encoding="utf-8",
    )
    known = {"duration_min", "distance_km", "pickup_at"}

    problems = check_suite(load_suite(folder, "bad"), known_columns=known)

    source = folder / "bad.yaml"
    assert len(problems) == 4, problems
    assert problems[0].startswith(f"{source}:2: expect_column_values_to_be_betwen: GX has no expectation type")
    assert "did you mean 'expect_column_values_to_be_between'?" in problems[0]
    assert problems[1].startswith(f"{source}:3: expect_column_values_to_be_between: bad arguments: mostly:")
    assert problems[2].startswith(f"{source}:4: ")
    assert "column 'durration'" in problems[2]
    assert "did you mean 'duration_min'?" in problems[2]
    assert "column 'distanse_km'" in problems[3]
    assert "did you mean 'distance_km'?" in problems[3]
    assert check_suite(load_suite(folder, "trips"), known_columns=known) == []


def test_the_shipped_suites_are_sound() -> None:
    from airflow_ml.templates import load_city_configs

    configs, errors = load_city_configs(REPO / "dag_templates")
    assert errors == []
    for config in configs:
        suite = load_suite(REPO / "expectations", config.suite, city=config.city, overrides=config.expectations)
        assert check_suite(suite, known_columns=config.dataset.known_columns) == [], config.city


def test_lint_reports_a_broken_suite_with_its_line_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    shutil.copytree(REPO / "dag_templates", tmp_path / "dag_templates")
    expectations = tmp_path / "expectations"
    shutil.copytree(REPO / "expectations", expectations)
    (expectations / "ride_trips.berlin.yaml").write_text(
        "expectations:\n  - expect_column_values_to_be_between: {column: distance_kms, max_value: 80}\n",
        encoding="utf-8",
    )

    code = main(["lint", str(tmp_path / "dag_templates"), "--expectations", str(expectations)])

    out = capsys.readouterr().out
    assert code == 1
    assert f"{expectations / 'ride_trips.berlin.yaml'}:2:1: expect_column_values_to_be_between" in out
    assert "column 'distance_kms'" in out
    assert "did you mean 'distance_km'?" in out
    assert "(cities: berlin)" in out


def test_a_city_file_expectation_is_checked_by_the_loader(tmp_path: Path) -> None:
    from airflow_ml.templates import load_city_file

    (tmp_path / "templates").mkdir()
    shutil.copy(REPO / "dag_templates" / "templates" / "ride_duration.yaml", tmp_path / "templates")
    city = tmp_path / "porto.yaml"
    city.write_text(
        "city: porto\ntemplate: ride_duration\nexpectations:\n  - expect_column_to_exist: {column: a}\n    level: 3\n",
        encoding="utf-8",
    )

    with pytest.raises(ConfigError) as info:
        load_city_file(city, tmp_path / "templates")

    message = str(info.value)
    assert str(city) in message
    assert "line 3" in message
    assert "expectations" in message
    assert "exactly one expectation" in message


def test_json_and_yaml_forms_give_the_same_suite(tmp_path: Path) -> None:
    yaml_folder, json_folder = tmp_path / "y", tmp_path / "j"
    yaml_folder.mkdir()
    json_folder.mkdir()
    (yaml_folder / "s.yaml").write_text(YAML_SUITE, encoding="utf-8")
    gx_form = {
        "expectations": [
            {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 10}},
            {
                "type": "expect_column_values_to_be_between",
                "kwargs": {"column": "duration_min", "min_value": 0.5, "max_value": 600},
                "meta": {"severity": "warn", "notes": "longer trips are data errors"},
            },
            {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "pickup_at"}},
        ]
    }
    (json_folder / "s.json").write_text(json.dumps(gx_form), encoding="utf-8")

    def strip(suite: dict) -> list:
        return [{**e, "meta": {k: v for k, v in e["meta"].items() if k != "source"}} for e in suite["expectations"]]

    assert strip(load_suite(yaml_folder, "s")) == strip(load_suite(json_folder, "s"))
