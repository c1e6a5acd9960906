"""A cron expression that never fires is refused at lint and parse, naming its fields (review of issue 11, L1).

``0 0 31 2 *`` is valid field by field; Airflow's timetable then raised CroniterBadDateError for the DAG.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from airflow_ml.templates import load_city_configs

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "dag_templates"
    (root / "templates").mkdir(parents=True)
    (root / "cities").mkdir()
    shutil.copy(REPO / "dag_templates" / "templates" / "ride_duration.yaml", root / "templates")
    return root


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
