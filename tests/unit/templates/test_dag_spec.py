"""A cron expression that never fires is refused at lint and parse, naming its fields (review of issue 11, L1).

``0 0 31 2 *`` is valid field by field; Airflow's timetable then raised CroniterBadDateError for the DAG.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_ml.templates import load_city_configs, load_city_file
from tests.support.city_files import assert_points_at, config_error, line_of, write_city, write_file


def _load(root: Path, schedule: str) -> tuple[list, list]:
    (root / "cities" / "porto.yaml").write_text(
        f"city: porto\ntemplate: ride_duration\ndag:\n  schedule: {schedule}\n", encoding="utf-8"
    )
    return load_city_configs(root)


@pytest.mark.parametrize(
    ("schedule", "named"),
    [
        ("'0 0 31 2 *'", "day of month '31' in month '2'"),
        ("'0 0 30 2 *'", "day of month '30' in month '2'"),
        ("'15 3 31 4,6,9,11 *'", "day of month '31' in month '4,6,9,11'"),
        ("['0 2 * * *', '0 0 30-31 2 *']", "day of month '30-31' in month '2'"),
    ],
)
def test_a_cron_that_never_runs_is_refused_naming_its_fields(root: Path, schedule: str, named: str) -> None:
    configs, errors = _load(root, schedule)

    assert configs == []
    [error] = errors
    [problem] = error.located
    assert problem.line == 4
    assert "never runs: no date has " + named in problem.message
    assert "February has 28, or 29 in leap years" in problem.message


@pytest.mark.parametrize("schedule", ["'0 0 29 2 *'", "'0 0 31 1 *'", "'0 0 31 2 1'", "'0 2 * FEB *'", "'0 6 L 2 *'"])
def test_crons_that_run_even_rarely_still_load(root: Path, schedule: str) -> None:
    configs, errors = _load(root, schedule)

    assert errors == []
    assert [c.city for c in configs] == ["porto"]


def test_bad_cron_expression(root: Path) -> None:
    path = write_city(root, "oslo", 'city: oslo\ntemplate: ride_duration\ndag:\n  schedule: "61 * * * *"\n')

    exc = config_error(path, root)

    assert_points_at(exc, path, line_of(path, "schedule"), "dag.schedule", "'61 * * * *'", "cron")


def test_unknown_schedule_preset_lists_the_known_ones(root: Path) -> None:
    path = write_city(root, "oslo", 'city: oslo\ntemplate: ride_duration\ndag:\n  schedule: "@dayly"\n')

    exc = config_error(path, root)

    assert_points_at(exc, path, line_of(path, "schedule"), "dag.schedule", "'@dayly'", "'@daily'")


@pytest.mark.parametrize("schedule", ["@daily", "*/15 * * * *", None])
def test_valid_schedules_load(root: Path, schedule: str | None) -> None:
    shown = "null" if schedule is None else f'"{schedule}"'
    path = write_city(root, "oslo", f"city: oslo\ntemplate: ride_duration\ndag:\n  schedule: {shown}\n")

    assert load_city_file(path, root / "templates").dag.schedule == schedule


@pytest.mark.parametrize(
    ("schedule", "fragment"),
    [
        ('["0 2 * * *", "61 * * * *"]', "'61 * * * *': the minute field '61' is out of range"),
        ('["@daily"]', "one or more cron"),
    ],
)
def test_list_schedules_hold_valid_crons(root: Path, schedule: str, fragment: str) -> None:
    write_file(root / "cities" / "porto.yaml", f"city: porto\ntemplate: ride_duration\ndag:\n  schedule: {schedule}\n")

    _, errors = load_city_configs(root)

    assert fragment in str(errors[0])
    assert "porto.yaml line 4" in str(errors[0])


@pytest.mark.parametrize("tag", ["model:ride_duration.porto", "city:lisbon"])
def test_a_dag_tag_the_factory_writes_is_refused_in_yaml(root: Path, tag: str) -> None:
    # model:<name> routes the fleet view's row to a registered model; city:<id> names the DAG's city.
    (root / "cities" / "porto.yaml").write_text(
        f"city: porto\ntemplate: ride_duration\ndag:\n  tags: ['{tag}']\n", encoding="utf-8"
    )

    configs, errors = load_city_configs(root)

    assert configs == []
    [error] = errors
    assert f"tag(s) ['{tag}'] start with 'city:' or 'model:'" in str(error)
    assert "which the factory sets itself" in str(error)
