"""The optional ``monitoring:`` section (templates/monitoring_spec.py), through the loader as lint and parse do."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from airflow_ml.templates import load_city_file
from airflow_ml.templates.monitoring_spec import MonitoringSpec
from tests.support import REPO
from tests.support.city_files import assert_points_at, config_error, line_of, write_city

SCORING = (
    "dataset:\n  extra_columns: [trip_id]\n"
    + "scoring:\n  source: '{data_root}/incoming/{city}'\n  key_columns: [trip_id]\n"
)


def test_a_city_with_monitoring_gets_the_issue_s_defaults(root: Path) -> None:
    path = write_city(root, "porto", f"city: porto\ntemplate: ride_duration\n{SCORING}monitoring: {{}}\n")

    monitoring = load_city_file(path, root / "templates").monitoring

    assert monitoring is not None
    assert (monitoring.window_days, monitoring.windows, monitoring.schedule) == (1, 30, "@daily")
    assert (monitoring.labels.source, monitoring.labels.format, monitoring.labels.join) == (None, None, "key")
    assert monitoring.bootstrap.model_dump() == {"resamples": 1000, "confidence": 0.95, "seed": 0}
    assert monitoring.supervisor.model_dump() == {
        "mode": "alert",
        "tolerance": 0.2,
        "consecutive_windows": 3,
        "min_labels": 200,
        "after_demotion": "require_approval",
        "cooldown_days": 7,
    }
    assert (monitoring.shadow.min_improvement, monitoring.shadow.min_labels, monitoring.shadow.min_days) == (
        0.02,
        1000,
        7,
    )
    assert monitoring.labels_uri("{data_root}/raw/trips/{city}", "/data/", "porto") == "file:///data/raw/trips/porto"


def test_a_city_without_monitoring_has_none_and_a_city_overrides_it_key_by_key(root: Path) -> None:
    template = root / "templates" / "ride_duration.yaml"
    text = template.read_text(encoding="utf-8")
    assert "  extra_columns: [trip_id]" in text  # the repo's template keeps the trip's id: scoring's key
    scoring = "scoring:\n  source: '{data_root}/incoming/{city}'\n  key_columns: [trip_id]\n"
    template.write_text(text + scoring + "monitoring:\n  supervisor: {mode: auto}\n", encoding="utf-8")
    plain = write_city(root, "oslo", "city: oslo\ntemplate: ride_duration\nmonitoring: null\n")
    path = write_city(
        root, "porto", "city: porto\ntemplate: ride_duration\nmonitoring:\n  supervisor: {min_labels: 50}\n"
    )

    monitoring = load_city_file(path, root / "templates").monitoring

    assert monitoring is not None
    assert (monitoring.supervisor.mode, monitoring.supervisor.min_labels) == ("auto", 50)
    assert load_city_file(plain, root / "templates").monitoring is None


@pytest.mark.parametrize(
    ("body", "needle", "fragments"),
    [
        ("monitoring:\n  windows: 3\n", "monitoring", ("needs a scoring: section", "add scoring:")),
        (
            "scoring:\n  source: '{data_root}/in/{city}'\nmonitoring:\n  labels: {join: key}\n",
            "join",
            ("scoring.key_columns", "which is empty", "labels.join: prediction_id"),
        ),
        (
            f"{SCORING}monitoring:\n  labels: {{source: '{{data_root}}/labels'}}\n",
            "labels",
            ("monitoring.labels.source", "{city}"),
        ),
        (f"{SCORING}monitoring:\n  labels: {{join: row}}\n", "labels", ("'key' or 'prediction_id'",)),
        (f"{SCORING}monitoring:\n  window_days: 0\n", "window_days", ("greater than or equal to 1",)),
        (f"{SCORING}monitoring:\n  windows: 1000\n", "windows", ("less than or equal to 365",)),
        (f"{SCORING}monitoring:\n  bootstrap: {{resamples: 10}}\n", "bootstrap", ("greater than or equal to 100",)),
        (f"{SCORING}monitoring:\n  supervisor:\n    mode: demote\n", "mode", ("'auto', 'alert' or 'off'",)),
        (f"{SCORING}monitoring:\n  supervisor:\n    tolerance: 0\n", "tolerance", ("greater than 0",)),
        (f"{SCORING}monitoring:\n  supervisor:\n    consecutive_windows: 0\n", "consecutive_windows", ("1",)),
        (f"{SCORING}monitoring:\n  supervisor:\n    min_labels: 0\n", "min_labels", ("30",)),
        (f"{SCORING}monitoring:\n  supervisor:\n    min_labels: 2\n", "min_labels", ("greater than or equal to 30",)),
        (f"{SCORING}monitoring:\n  supervisor:\n    after_demotion: never\n", "after_demotion", ("cooldown",)),
        (f"{SCORING}monitoring:\n  supervisor:\n    cooldown_days: 400\n", "cooldown_days", ("365",)),
        (f"{SCORING}monitoring:\n  shadow:\n    min_days: 0\n", "min_days", ("1",)),
        (f"{SCORING}monitoring:\n  supervisors: {{}}\n", "supervisors", ("supervisors",)),
    ],
)
def test_a_bad_monitoring_section_is_refused_naming_line_field_and_fix(
    root: Path, body: str, needle: str, fragments: tuple[str, ...]
) -> None:
    path = write_city(root, "porto", f"city: porto\ntemplate: ride_duration\n{body}")

    exc = config_error(path, root)

    assert_points_at(exc, path, line_of(path, needle), *fragments)


@pytest.mark.parametrize(
    ("schedule", "fragments"),
    [("@weekdays", ("unknown schedule preset", "@daily")), ("0 6 * *", ("a cron expression has five",))],
)
def test_a_bad_monitor_schedule_in_the_template_is_refused_naming_its_line(
    root: Path, schedule: str, fragments: tuple[str, ...]
) -> None:
    template = root / "templates" / "ride_duration.yaml"
    scoring = SCORING.split("scoring:", 1)[1]  # the template already keeps trip_id
    text = template.read_text(encoding="utf-8") + f"scoring:{scoring}monitoring:\n  schedule: '{schedule}'\n"
    template.write_text(text, encoding="utf-8")
    path = write_city(root, "porto", "city: porto\ntemplate: ride_duration\n")

    exc = config_error(path, root)

    assert_points_at(exc, template, line_of(template, "schedule: '"), "monitoring.schedule", *fragments)


def test_monitor_is_no_city_id_since_the_monitor_dag_takes_it(root: Path) -> None:
    path = write_city(root, "monitor", "city: monitor\ntemplate: ride_duration\n")

    exc = config_error(path, root)

    assert_points_at(exc, path, 1, "reserved for the template's monitor DAG", "ride_duration.monitor")


def test_the_guide_shows_the_defaults() -> None:
    text = (REPO / "docs" / "guides" / "monitoring.md").read_text(encoding="utf-8")
    block = text.split("```yaml\n", 1)[1].split("```", 1)[0]

    assert MonitoringSpec.model_validate(yaml.safe_load(block)["monitoring"]) == MonitoringSpec()


@pytest.mark.parametrize(
    "source",
    [
        "/srv/other-client/labels/{city}",
        "{city}",
        "{data_root}x/{city}",
        "{data_root}/../other-client/{city}",
        "file:///srv/other-client/{city}",
        "http://labels.example/{city}",
        "s3:///{city}",
    ],
)
def test_a_hostile_labels_source_is_refused_naming_line_field_and_fix(root: Path, source: str) -> None:
    path = write_city(
        root,
        "porto",
        f"city: porto\ntemplate: ride_duration\n{SCORING}monitoring:\n  labels:\n    source: '{source}'\n",
    )

    exc = config_error(path, root)

    assert_points_at(exc, path, line_of(path, "    source: "), "monitoring.labels.source")
    assert "'..'" in str(exc) or "write it from {data_root} down" in str(exc)


@pytest.mark.parametrize("source", ["{data_root}/outcomes/{city}", "s3://labels-bucket/{city}"])
def test_a_labels_source_under_the_data_root_or_on_s3_is_accepted(root: Path, source: str) -> None:
    path = write_city(
        root,
        "porto",
        f"city: porto\ntemplate: ride_duration\n{SCORING}monitoring:\n  labels:\n    source: '{source}'\n",
    )

    monitoring = load_city_file(path, root / "templates").monitoring

    assert monitoring is not None
    assert monitoring.labels.source == source


def test_drift_review_is_no_city_id_since_the_drift_review_dag_takes_it(root: Path) -> None:
    path = write_city(root, "drift_review", "city: drift_review\ntemplate: ride_duration\n")

    exc = config_error(path, root)

    assert_points_at(exc, path, 1, "reserved for the template's drift review DAG", "ride_duration.drift_review")
