"""What a city or group file may not set (templates/city_layer.py): the template's monitor schedule, a parent."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_ml.exceptions import ConfigError
from airflow_ml.templates import load_city_file
from tests.support.city_files import assert_points_at, config_error, line_of, write_city, write_file
from tests.support.monitoring_worlds import MONITORING

SCHEDULE = "monitoring:\n  schedule: '0 6 * * *'\n"


def _template_monitors(root: Path, extra: str = "") -> Path:
    template = root / "templates" / "ride_duration.yaml"
    text = (
        template.read_text(encoding="utf-8") + "scoring:\n  source: '{data_root}/in/{city}'\n  key_columns: [trip_id]\n"
    )
    template.write_text(text + extra, encoding="utf-8")
    return template


def test_the_template_sets_the_monitor_schedule_for_all_its_cities(root: Path) -> None:
    _template_monitors(root, SCHEDULE)
    path = write_city(root, "porto", f"city: porto\ntemplate: ride_duration\n{MONITORING}")

    monitoring = load_city_file(path, root / "templates").monitoring

    assert monitoring is not None
    assert (monitoring.schedule, monitoring.windows) == ("0 6 * * *", 5)  # the city's own keys merge beside it


def test_a_city_file_that_sets_the_monitor_schedule_is_refused_naming_its_line_and_the_fix(root: Path) -> None:
    _template_monitors(root)
    path = write_city(root, "porto", f"city: porto\ntemplate: ride_duration\n{MONITORING}  schedule: '@hourly'\n")

    exc = config_error(path, root)

    assert_points_at(
        exc,
        path,
        line_of(path, "schedule:"),
        "monitoring.schedule: '@hourly' cannot be set here",
        "<template>.monitor",
        "set 'monitoring: {schedule: ...}' in templates/ride_duration.yaml and remove it from this file",
    )


def test_a_group_file_that_sets_the_monitor_schedule_is_refused_too(root: Path) -> None:
    _template_monitors(root)
    group = write_file(root / "groups" / "portugal.yaml", f"{SCHEDULE}")
    path = write_city(root, "porto", f"city: porto\ntemplate: ride_duration\ngroup: portugal\n{MONITORING}")

    with pytest.raises(ConfigError) as refused:  # the city's load reports its group's file
        load_city_file(path, root / "templates", groups_dir=root / "groups")
    exc = refused.value

    assert_points_at(exc, group, 2, "monitoring.schedule: '0 6 * * *' cannot be set here", "the template file")
