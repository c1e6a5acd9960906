"""Expectation arguments that would run code, read files or reach the network are refused, in every suite."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from airflow_ml.templates.gx_context_files import load_gx_checks
from airflow_ml.templates.suite_files import load_suite
from airflow_ml.validation.runner import columns_to_validate, run_suite
from airflow_ml.validation.suite_check import check_suite
from airflow_ml.validation.unsafe_arguments import argument_problems, condition_columns
from tests.support.gx_contexts import make_gx_context, recording_webhook


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = tmp_path_factory.mktemp("made")
    make_gx_context(project, webhook="http://127.0.0.1:9/never")
    return project


def _suite(*kwargs: dict[str, Any]) -> dict[str, Any]:
    kind = "expect_column_values_to_not_be_null"
    items = [{"type": kind, "kwargs": k, "meta": {"source": "s.yaml:3"}} for k in kwargs]
    return {"name": "s", "meta": {}, "expectations": items}


def test_a_row_condition_that_runs_code_is_refused_by_check_and_run_and_never_runs(made: Path, tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(made, project)
    marker = tmp_path / "pwned"
    suite_file = project / "gx" / "expectations" / "trips.json"
    data = json.loads(suite_file.read_text(encoding="utf-8"))
    hostile = f"a.__class__.__init__.__globals__['sys'].modules['os'].system('touch {marker}') == 0"
    data["expectations"].append(
        {
            "type": "expect_column_values_to_not_be_null",
            "severity": "critical",
            "kwargs": {"column": "a", "condition_parser": "pandas", "row_condition": hostile},
        }
    )
    suite_file.write_text(json.dumps(data), encoding="utf-8")
    suite = load_gx_checks(project, "gx", checkpoint=None, suite="trips").suite

    problems = check_suite(suite)

    assert len(problems) == 1
    assert str(suite_file) in problems[0]
    assert "expect_column_values_to_not_be_null" in problems[0]
    assert "row_condition" in problems[0]
    assert "compares something other than columns and literals" in problems[0]
    assert "\"status == 'completed' and fare > 0\"" in problems[0]  # the fix
    with pytest.raises(ValueError, match="is refused"):
        run_suite(pd.DataFrame({"a": [1], "duration_min": [3.0]}), suite, suite_file="gx")
    assert not marker.exists()


@pytest.mark.parametrize(
    "condition",
    [
        {"row_condition": "a.__class__ == 1", "condition_parser": "pandas"},
        {"row_condition": "b.sum() > 1", "condition_parser": "pandas"},
        {"row_condition": "b > @x", "condition_parser": "pandas"},
        {"row_condition": "`b` > 1", "condition_parser": "pandas"},
        {"row_condition": "b > 1", "condition_parser": "python"},
        {"row_condition": "b.pipe(print) == 1"},
        {"row_condition": {"type": "pass_through", "pass_through_filter": "b.pipe(print) == 1"}},
        {
            "row_condition": {
                "type": "comparison",
                "column": {"name": "b` + x.y() + `"},
                "operator": ">",
                "parameter": 0,
            }
        },
        {"row_condition": {"type": "comparison", "column": {"name": "b"}, "operator": ">", "parameter": {"a": 1}}},
    ],
)
def test_row_conditions_outside_the_grammar_are_refused(condition: dict[str, Any]) -> None:
    (problem,) = argument_problems({"column": "a", **condition})

    assert problem.startswith("row_condition ")


@pytest.mark.parametrize(
    ("condition", "columns"),
    [
        ({"row_condition": "status == 'completed' and fare > 0", "condition_parser": "pandas"}, ["status", "fare"]),
        ({"row_condition": "(city in ['a', 'b']) | ~b.notnull()", "condition_parser": "pandas"}, ["city", "b"]),
        ({"row_condition": "b.isin([1, 2]) & (c < -1)", "condition_parser": "pandas"}, ["b", "c"]),
        ({"row_condition": 'col("b") > 1', "condition_parser": "great_expectations"}, ["b"]),
        ({"row_condition": {"type": "pass_through", "pass_through_filter": "b > 1"}}, ["b"]),
        ({"row_condition": "b > 1"}, ["b"]),  # GX 1.x runs a string without a parser as pandas' query
    ],
)
def test_plain_row_conditions_are_accepted_and_name_their_columns(
    condition: dict[str, Any], columns: list[str]
) -> None:
    kwargs = {"column": "a", **condition}

    assert argument_problems(kwargs) == []
    assert condition_columns(kwargs) == columns


def test_gx_structured_conditions_made_by_gx_are_accepted_and_their_columns_reach_gx() -> None:
    import great_expectations as gx
    from great_expectations.expectations.row_conditions import Column

    made = gx.expectations.ExpectColumnValuesToNotBeNull(
        column="dropoff", row_condition=(Column("status") == "completed") & Column("fare").is_not_null()
    )
    kwargs = made.configuration.to_json_dict()["kwargs"]
    suite = _suite(kwargs)
    frame = pd.DataFrame({"dropoff": [1.0, None], "status": ["completed", "cancelled"], "fare": [3.0, 2.0], "x": 1})

    assert check_suite(suite) == []
    assert columns_to_validate(suite, list(frame.columns)) == ["dropoff", "status", "fare"]
    verdict, _ = run_suite(frame, suite, suite_file="s")
    assert verdict.status == "passed"  # the null dropoff is on a cancelled trip


def test_a_row_condition_on_a_column_the_suite_does_not_otherwise_name_runs() -> None:
    suite = _suite({"column": "a", "row_condition": "b > 1", "condition_parser": "pandas"})

    verdict, _ = run_suite(pd.DataFrame({"a": [1.0, None], "b": [2, 0]}), suite, suite_file="s")

    assert (verdict.status, verdict.failures) == ("passed", [])


def test_a_json_schema_ref_to_a_url_or_a_file_is_refused_and_nothing_is_fetched(tmp_path: Path) -> None:
    (tmp_path / "secret.json").write_text('{"type": "string"}', encoding="utf-8")
    with recording_webhook() as (url, calls):
        schema = {"$defs": {"ok": {"type": "string"}}, "anyOf": [{"$ref": f"{url}/latest/meta-data"}]}
        schema["allOf"] = [{"$ref": f"file://{tmp_path}/secret.json"}, {"$ref": "#/$defs/ok"}]
        suite = {
            "name": "s",
            "meta": {},
            "expectations": [
                {
                    "type": "expect_column_values_to_match_json_schema",
                    "kwargs": {"column": "a", "json_schema": schema},
                    "meta": {"source": "s.yaml:3"},
                }
            ],
        }

        problems = check_suite(suite)
        with pytest.raises(ValueError, match="points outside the schema"):
            run_suite(pd.DataFrame({"a": ['"x"']}), suite, suite_file="s")

    assert len(problems) == 2
    assert "latest/meta-data" in problems[0]
    assert "secret.json" in problems[1]
    assert "copy the referenced schema in under $defs" in problems[0]
    assert calls == []


def test_a_suite_parameter_is_refused_at_check_with_the_fix(tmp_path: Path) -> None:
    (tmp_path / "trips.yaml").write_text(
        "expectations:\n  - expect_column_values_to_be_between: {column: a, min_value: {$PARAMETER: lo}}\n",
        encoding="utf-8",
    )

    (problem,) = check_suite(load_suite(tmp_path, "trips"))

    assert f"{tmp_path / 'trips.yaml'}:2" in problem
    assert "min_value: {'$PARAMETER': 'lo'} is a suite parameter" in problem
    assert "write the value itself" in problem


def test_the_guides_row_condition_example_passes_check_and_filters_the_rows(tmp_path: Path) -> None:
    from tests.support import REPO

    guide = (REPO / "docs" / "guides" / "suites.md").read_text(encoding="utf-8")
    (line,) = [x for x in guide.splitlines() if "row_condition:" in x and x.lstrip().startswith("- ")]
    (tmp_path / "trips.yaml").write_text(f"expectations:\n{line}\n", encoding="utf-8")
    suite = load_suite(tmp_path, "trips")
    frame = pd.DataFrame({"dropoff_at": [1.0, None], "status": ["completed", "cancelled"]})

    assert check_suite(suite) == []
    assert run_suite(frame, suite, suite_file="trips")[0].status == "passed"


def test_lint_reports_a_row_condition_that_runs_code_at_its_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from airflow_ml.cli import main
    from tests.support.worlds import copy_repository_config

    world = copy_repository_config(tmp_path)
    sibling = world["expectations"] / "ride_trips.berlin.yaml"
    hostile = "{column: duration_min, condition_parser: pandas, row_condition: 'duration_min.pipe(print) == 1'}"
    sibling.write_text(f"expectations:\n  - expect_column_values_to_not_be_null: {hostile}\n", encoding="utf-8")

    code = main(["lint", str(world["templates"]), "--expectations", str(world["expectations"])])

    out = capsys.readouterr().out
    assert code == 1
    assert f"{sibling}:2:1: expect_column_values_to_not_be_null" in out
    assert "compares something other than columns and literals" in out
