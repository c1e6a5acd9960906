"""Lint warns when a template's suite lets its target be null and no row filter drops those rows.

A warning, labelled so, that leaves lint's exit code alone: rows with a null target are real (an outcome
never observed), and without the warning they surface only when training refuses them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from airflow_ml.cli import main
from airflow_ml.templates.suite_files import target_null_warning

REPO = Path(__file__).resolve().parents[2]
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
    templates = tmp_path / "dag_templates"
    shutil.copytree(REPO / "dag_templates", templates)
    expectations = tmp_path / "expectations"
    shutil.copytree(REPO / "expectations", expectations)
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
