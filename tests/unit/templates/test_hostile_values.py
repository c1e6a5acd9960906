"""One small hostile file never crashes a reader and never hides the other cities (review of issue 11, H1).

Values YAML cannot build (a date that does not exist), whole numbers Python will not build, nesting that
crashes libyaml's C composer, a ``meta`` of the wrong type: each is that file's error, with its line, for
the loader, the DAG files' broken-files report and lint alike. What no message foresaw is still only that
file's error.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from airflow_ml.exceptions import BrokenCityFiles, ConfigError
from airflow_ml.templates import load_city_configs, yaml_lines
from airflow_ml.templates.suite_files import read_suite_file
from airflow_ml.templates.yaml_lines import MAX_DEPTH, YamlFileError, load_yaml_with_lines
from tests.support import REPO

CITY = "city: {city}\ntemplate: ride_duration\n"
HUGE = "9" * 5000  # Python refuses to build a whole number over 4,300 digits


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A templates folder: the repository's ride_duration template and a sound city, oslo."""
    root = tmp_path / "dag_templates"
    (root / "templates").mkdir(parents=True)
    (root / "cities").mkdir()
    shutil.copy(REPO / "dag_templates" / "templates" / "ride_duration.yaml", root / "templates")
    (root / "cities" / "oslo.yaml").write_text(CITY.format(city="oslo"), encoding="utf-8")
    return root


def _porto(root: Path, text: str) -> Path:
    path = root / "cities" / "porto.yaml"
    path.write_text(CITY.format(city="porto") + text, encoding="utf-8")
    return path


def _porto_error(root: Path) -> ConfigError:
    """Porto's one error; oslo still loads."""
    configs, errors = load_city_configs(root)
    assert [c.city for c in configs] == ["oslo"]
    [error] = errors
    assert error.file == str(root / "cities" / "porto.yaml")
    return error


def test_a_date_that_does_not_exist_is_the_files_error_at_its_line(root: Path) -> None:
    _porto(root, "display_name: 2026-02-30\n")

    [problem] = _porto_error(root).located

    assert problem.line == 3
    assert problem.message.startswith("display_name: '2026-02-30' reads as a date that cannot be built")
    assert "day is out of range for month" in problem.message
    assert "quote it to keep it as text" in problem.message


def test_a_5000_digit_number_is_refused_without_printing_it(root: Path) -> None:
    _porto(root, f"training:\n  params:\n    num_boost_round: {HUGE}\n")

    error = _porto_error(root)

    [problem] = error.located
    assert problem.line == 5
    assert problem.message.startswith("training.params.num_boost_round: a whole number of 5000 characters")
    assert "write the number meant" in problem.message
    assert len(str(error)) < 400  # the value itself is never printed


@pytest.mark.parametrize(
    ("text", "line", "field"),
    [
        ("dag:\n  retries: 1" + ":59" * 20 + "\n", 4, "dag.retries"),  # YAML 1.1 base 60: built in quadratic time
        ("description: {? 1" + ":59" * 20 + " : x}\n", 3, "description"),  # the same, as a key
    ],
)
def test_a_long_base_60_number_is_refused_unbuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, line: int, field: str
) -> None:
    # A '1:59:59:...' of a megabyte tied up a core for minutes while PyYAML built it, before it was refused.
    built: list[str] = []

    def counted(constructor: Any, node: Any) -> int:
        built.append(node.value)
        return 0

    int_tag = "tag:yaml.org,2002:int"
    for constructors in (yaml_lines._PLAIN_SCALARS, yaml_lines._Loader.yaml_constructors):
        monkeypatch.setitem(constructors, int_tag, counted)  # both ways a value gets built
    path = tmp_path / "porto.yaml"
    path.write_text(CITY.format(city="porto") + text, encoding="utf-8")

    with pytest.raises(YamlFileError) as info:
        load_yaml_with_lines(path)

    assert [value for value in built if len(value) > 32] == []
    [problem] = info.value.problems
    assert problem.line == line
    assert problem.message.startswith(f"{field}: a whole number of 61 characters")


def test_a_5000_digit_number_in_a_json_suite_is_refused_at_its_field_and_line(tmp_path: Path) -> None:
    path = tmp_path / "trips.json"
    suite = '{"expectations": [\n {"type": "expect_column_values_to_be_between",\n'
    path.write_text(suite + f'  "kwargs": {{"column": "a", "max_value": {HUGE}}}}}]}}\n', encoding="utf-8")

    with pytest.raises(ConfigError) as info:
        read_suite_file(path)

    [problem] = info.value.located
    assert problem.line == 3
    assert problem.message.startswith("expectations[0].kwargs.max_value: a whole number of 5000 characters")
    assert len(str(info.value)) < 400


@pytest.mark.parametrize(
    ("nested", "line"),
    [
        ("description: " + "[" * 30_000 + "]" * 30_000 + "\n", 3),  # 60 KB: libyaml's composer crashed the process
        ("description:\n" + "- " * 30_000 + "x\n", 4),  # block sequences nest on one line too
    ],
    ids=["flow", "block"],
)
def test_a_deeply_nested_city_is_refused_by_lint_and_hides_no_city(root: Path, nested: str, line: int) -> None:
    path = _porto(root, nested)

    # A subprocess: before the bound, the C loader took the whole interpreter down (SIGSEGV).
    done = subprocess.run(
        [sys.executable, "-m", "airflow_ml.cli", "lint", str(root), "--expectations", str(REPO / "expectations")],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 1, done.stderr[-2000:]
    assert f"{path}:{line}:" in done.stdout
    assert f"nested more than {MAX_DEPTH} levels deep" in done.stdout
    assert "write the value out flat" in done.stdout
    assert "1 city config(s) valid, 1 file(s) with errors" in done.stdout
    assert "Traceback" not in done.stderr


def test_nesting_is_bounded_in_block_mappings_too(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    levels = MAX_DEPTH + 5
    path.write_text("city: x\n" + "".join(" " * i + "k:\n" for i in range(levels)) + " " * levels + "k: 1\n")

    with pytest.raises(YamlFileError) as info:
        load_yaml_with_lines(path)

    [problem] = info.value.problems
    assert problem.line == MAX_DEPTH + 2  # where the level past the bound opens
    assert problem.message.startswith("k.k.k.k")
    assert f"nested more than {MAX_DEPTH} levels deep" in problem.message


def test_nesting_within_the_bound_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "fine.yaml"
    path.write_text("a: " + "[" * 20 + "1" + "]" * 20 + "\nb:\n  - - - x\n", encoding="utf-8")

    data, _ = load_yaml_with_lines(path)

    assert data["b"] == [[["x"]]]


def test_a_deeply_nested_json_suite_is_refused_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "trips.json"
    path.write_text('{"expectations":\n [' + "[" * 5000 + "]" * 5000 + "]}\n", encoding="utf-8")

    with pytest.raises(ConfigError) as info:
        read_suite_file(path)

    [problem] = info.value.located
    assert problem.line == 2
    assert f"nested more than {MAX_DEPTH} levels deep" in problem.message


def test_brackets_inside_json_strings_are_not_nesting(tmp_path: Path) -> None:
    path = tmp_path / "trips.json"
    notes = "[" * 300
    expectation = {"type": "expect_column_to_exist", "kwargs": {"column": "a"}, "meta": {"notes": notes}}
    path.write_text(json.dumps({"expectations": [expectation]}), encoding="utf-8")

    _, [parsed] = read_suite_file(path)

    assert parsed["meta"]["notes"] == notes


def test_an_expectation_whose_meta_is_not_a_mapping_in_a_city_is_its_error(root: Path) -> None:
    _porto(root, "expectations:\n  - {type: expect_column_to_exist, kwargs: {column: a}, meta: [1, 2, 3]}\n")

    [problem] = _porto_error(root).located

    assert problem.line == 3
    assert problem.message.startswith("expectations:")
    assert "meta must be a mapping such as {severity: warn}, got [1, 2, 3]" in problem.message


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("meta: [1, 2]\nexpectations:\n  - expect_column_to_exist: {column: a}\n", 1, "meta: must be a mapping"),
        (
            "expectations:\n  - {type: expect_column_to_exist, kwargs: {column: a}, meta: [1]}\n",
            2,
            "meta must be a mapping",
        ),
        (
            "expectations:\n  - {type: expect_column_to_exist, kwargs: {column: a}, 1: x, zz: y}\n",
            2,
            "unknown key(s) ['1', 'zz'] beside 'type'",
        ),
    ],
)
def test_a_suite_item_of_the_wrong_shape_is_refused(tmp_path: Path, text: str, line: int, fragment: str) -> None:
    path = tmp_path / "trips.yaml"
    path.write_text(text, encoding="utf-8")

    with pytest.raises(ConfigError) as info:
        read_suite_file(path)

    [problem] = info.value.located
    assert problem.line == line
    assert fragment in problem.message


def test_what_no_check_foresaw_is_one_files_error_everywhere(
    root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A check that breaks on one file's values (a fault put into airflow-ml's own code): the others load."""
    from airflow_ml.cli import main
    from airflow_ml.factory import report_broken_cities
    from airflow_ml.templates import loader

    path = _porto(root, "display_name: Porto\n")
    real = loader.CityConfig.model_validate

    def breaks_on_porto(data: dict, *args: object, **kwargs: object) -> object:
        if data.get("city") == "porto":
            raise RuntimeError("a check nobody foresaw")
        return real(data, *args, **kwargs)

    monkeypatch.setattr(loader.CityConfig, "model_validate", breaks_on_porto)

    error = _porto_error(root)
    assert "the file could not be checked (RuntimeError: a check nobody foresaw)" in str(error)
    with pytest.raises(BrokenCityFiles) as info:  # dags/retrain_errors.py
        report_broken_cities(templates_root=root)
    assert f"{path}: 1 problem(s)" in str(info.value)
    code = main(["lint", str(root), "--expectations", str(REPO / "expectations")])
    out = capsys.readouterr().out
    assert code == 1
    assert f"{path}:1:1: the file could not be checked (RuntimeError: a check nobody foresaw)" in out
    assert "1 city config(s) valid, 1 file(s) with errors" in out
