"""Suite files: JSON errors at their line, unknown suites, and lint's warning on a target the suite lets be null
(airflow_ml.templates.suite_files)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from airflow_ml.cli import main
from airflow_ml.exceptions import ConfigError
from airflow_ml.templates.suite_files import load_suite, target_null_warning
from tests.support import REPO
from tests.support.worlds import copy_repository_config


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


@pytest.mark.parametrize(
    ("item", "gx", "ours"),
    [
        ({"type": "expect_column_to_exist", "kwargs": {"column": "a"}}, "critical", "error"),
        (
            {"type": "expect_column_to_exist", "kwargs": {"column": "a"}, "meta": {"severity": "warn"}},
            "warning",
            "warn",
        ),
        ({"type": "expect_column_to_exist", "kwargs": {"column": "a"}, "severity": "warning"}, "warning", "warn"),
        ({"type": "expect_column_to_exist", "kwargs": {"column": "a"}, "severity": "info"}, "warning", "warn"),
        ({"type": "expect_column_to_exist", "kwargs": {"column": "a"}, "severity": "critical"}, "critical", "error"),
    ],
)
def test_each_expectation_carries_gxs_own_severity_beside_ours(
    tmp_path: Path, item: dict[str, Any], gx: str, ours: str
) -> None:
    """GX's tools read an expectation's ``severity`` field: a warn must say ``warning`` there, not ``critical``."""
    write_suite(tmp_path, "trips", json.dumps({"expectations": [item]}))

    (expectation,) = load_suite(tmp_path, "trips")["expectations"]

    assert (expectation["severity"], expectation["meta"]["severity"]) == (gx, ours)


def test_gxs_severity_and_meta_severity_that_disagree_are_refused(tmp_path: Path) -> None:
    item = {
        "type": "expect_column_to_exist",
        "kwargs": {"column": "a"},
        "severity": "critical",
        "meta": {"severity": "warn"},
    }
    path = write_suite(tmp_path, "trips", json.dumps({"expectations": [item]}))

    with pytest.raises(ConfigError) as info:
        load_suite(tmp_path, "trips")

    assert str(path) in str(info.value)
    assert "severity 'critical' and meta.severity 'warn' disagree" in str(info.value)


def test_a_warn_is_a_warning_in_gxs_own_validation_result(tmp_path: Path) -> None:
    import pandas as pd

    from airflow_ml.validation.runner import run_suite

    (tmp_path / "trips.yaml").write_text(
        "expectations:\n"
        "  - expect_column_values_to_be_between: {column: x, max_value: 1}\n"
        "    severity: warn\n"
        "  - expect_column_to_exist: {column: x}\n",
        encoding="utf-8",
    )
    suite = load_suite(tmp_path, "trips")

    verdict, result = run_suite(pd.DataFrame({"x": [5]}), suite, suite_file="trips.yaml")

    assert [item["expectation_config"]["severity"] for item in result["results"]] == ["warning", "critical"]
    assert verdict.status == "warned"


def write_suite(folder: Path, name: str, content: str, suffix: str = ".json") -> Path:
    path = folder / f"{name}{suffix}"
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


NOT_NULL = "expect_column_values_to_not_be_null"


def suite(*expectations: dict[str, Any]) -> dict[str, Any]:
    return {"name": "trips", "expectations": list(expectations)}


def not_null(column: str, severity: str = "error", **kwargs: Any) -> dict[str, Any]:
    return {"type": NOT_NULL, "kwargs": {"column": column, **kwargs}, "meta": {"severity": severity}}


@pytest.mark.parametrize(
    ("expectations", "found"),
    [
        ((), "it has no not-null check on it"),
        ((not_null("distance_km"),), "it has no not-null check on it"),
        ((not_null("duration_min", mostly=0.9),), "its not-null check has severity error, mostly 0.9"),
        ((not_null("duration_min", severity="warn"),), "its not-null check has severity warn"),
    ],
)
def test_a_suite_that_lets_the_target_be_null_gets_a_warning(expectations: tuple[Any, ...], found: str) -> None:
    warning = target_null_warning(suite(*expectations), "duration_min")

    assert warning is not None
    assert f"suite 'trips' lets the target 'duration_min' be null ({found})" in warning
    assert "expect_column_values_to_not_be_null: {column: duration_min}" in warning
    assert "filters: [{column: duration_min, op: not_null}]" in warning


@pytest.mark.parametrize("expectation", [not_null("duration_min"), not_null("duration_min", mostly=1)])
def test_a_suite_that_requires_the_target_gets_none(expectation: dict[str, Any]) -> None:
    assert target_null_warning(suite(expectation), "duration_min") is None


def test_a_row_filter_on_the_target_makes_the_warning_moot() -> None:
    assert target_null_warning(suite(), "duration_min", filtered=True) is None


@pytest.fixture
def world(tmp_path: Path) -> dict[str, Path]:
    """The repository's templates, and its suite without the not-null check on the target."""
    copied = copy_repository_config(tmp_path)
    templates, expectations = copied["templates"], copied["expectations"]
    path = expectations / "ride_trips.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["expectations"] = [
        e for e in data["expectations"] if (e["type"], e["kwargs"].get("column")) != (NOT_NULL, "duration_min")
    ]
    path.write_text(json.dumps(data), encoding="utf-8")
    return {"templates": templates, "expectations": expectations}


def test_lint_prints_the_warning_once_and_still_exits_0(
    world: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["lint", str(world["templates"]), "--expectations", str(world["expectations"])])

    captured = capsys.readouterr()
    assert code == 0
    warnings = [line for line in captured.out.splitlines() if ": warning: " in line]
    assert len(warnings) == 1, captured.out
    assert warnings[0].startswith(f"{world['expectations'] / 'ride_trips.json'}:1:1: warning: ")
    assert "suite 'ride_trips' lets the target 'duration_min' be null" in warnings[0]
    assert warnings[0].endswith("(cities: berlin, lisbon, sao_paulo)")
    assert "3 city config(s) valid, 0 file(s) with errors, 1 warning(s)" in captured.out


def test_lint_says_nothing_when_the_template_filters_null_targets(
    world: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    template = world["templates"] / "templates" / "ride_duration.yaml"
    text = template.read_text(encoding="utf-8")
    template.write_text(
        text.replace("  window_days: 90\n", "  window_days: 90\n  filters: [{column: duration_min, op: not_null}]\n"),
        encoding="utf-8",
    )

    assert main(["lint", str(world["templates"]), "--expectations", str(world["expectations"])]) == 0
    assert "warning" not in capsys.readouterr().out


def test_the_repository_suite_requires_the_target(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", str(REPO / "dag_templates"), "--expectations", str(REPO / "expectations")]) == 0
    assert "warning" not in capsys.readouterr().err


# A FIFO's open for reading would wait for a writer forever: the signal method ends the test if the guard goes.
@pytest.mark.timeout(20, method="signal")
@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_a_suite_that_is_a_fifo_is_refused_with_the_fix_and_never_opened_for_good(tmp_path: Path, suffix: str) -> None:
    import os

    from airflow_ml.templates.suite_files import read_suite_file

    fifo = tmp_path / f"trips{suffix}"
    os.mkfifo(fifo)

    with pytest.raises(ConfigError) as info:  # the reader itself, whoever hands it the path
        read_suite_file(fifo)
    assert info.value.file == str(fifo)
    assert "is a FIFO, not a regular file" in str(info.value)
    with pytest.raises(ConfigError):  # the lookup lists regular files only
        load_suite(tmp_path, "trips")


def _in_set_suite(values: int) -> dict[str, Any]:
    """A suite whose one expectation lists ``values`` allowed values (a large in-set check)."""
    kwargs = {"column": "zone", "value_set": [f"zone-{i:08d}" for i in range(values)]}
    return {"expectations": [{"type": "expect_column_values_to_be_in_set", "kwargs": kwargs}]}


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_a_suite_past_a_city_files_bound_loads_in_either_format_and_one_past_its_own_is_refused(
    tmp_path: Path, suffix: str
) -> None:
    import yaml

    from airflow_ml.templates.bounded_read import MAX_YAML_BYTES
    from airflow_ml.templates.suite_files import MAX_SUITE_BYTES

    data = _in_set_suite(80_000)
    text = json.dumps(data) if suffix == ".json" else yaml.safe_dump(data)
    big = write_suite(tmp_path, "big", text, suffix)
    assert big.stat().st_size > MAX_YAML_BYTES  # past a city file's bound, well within a suite's
    assert len(load_suite(tmp_path, "big")["expectations"][0]["kwargs"]["value_set"]) == 80_000
    padding = " " * (MAX_SUITE_BYTES + 1 - len(text))  # trailing blanks: valid, but past the suite's bound
    write_suite(tmp_path, "huge", text + padding, suffix)

    with pytest.raises(ConfigError, match=rf"huge{suffix} holds more than {MAX_SUITE_BYTES:,} bytes"):
        load_suite(tmp_path, "huge")
