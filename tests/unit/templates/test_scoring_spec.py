"""The optional ``scoring:`` section (airflow_ml.templates.scoring_spec), through the loader as lint and parse do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airflow_ml.templates import load_city_file
from airflow_ml.templates.scoring_spec import ScoringSpec
from tests.support.city_files import assert_points_at, config_error, line_of, write_city

SCORING = "scoring:\n  source: '{data_root}/incoming/{city}'\n"


def test_a_city_without_scoring_has_none_and_one_with_it_gets_the_defaults(root: Path) -> None:
    plain = write_city(root, "oslo", "city: oslo\ntemplate: ride_duration\n")
    scored = write_city(root, "porto", f"city: porto\ntemplate: ride_duration\n{SCORING}")

    assert load_city_file(plain, root / "templates").scoring is None
    scoring = load_city_file(scored, root / "templates").scoring
    assert scoring is not None
    assert (scoring.enabled, scoring.schedule, scoring.shadow, scoring.key_columns, scoring.store) == (
        True,
        "@daily",
        True,
        [],
        None,
    )
    assert scoring.source_uri("/data/", "porto") == "file:///data/incoming/porto"
    assert scoring.output_root("/data/") == "/data"


def test_a_city_overrides_the_template_s_scoring_key_by_key(root: Path) -> None:
    template = root / "templates" / "ride_duration.yaml"
    template.write_text(template.read_text(encoding="utf-8") + SCORING, encoding="utf-8")
    path = write_city(root, "porto", "city: porto\ntemplate: ride_duration\nscoring:\n  enabled: false\n")

    scoring = load_city_file(path, root / "templates").scoring

    assert scoring is not None
    assert scoring.enabled is False
    assert scoring.source == "{data_root}/incoming/{city}"


@pytest.mark.parametrize(
    ("body", "needle", "fragments"),
    [
        ("  source: '{data_root}/incoming'\n", "source", ("scoring.source", "must contain '{city}'")),
        ("  source: '{data_root}/../{city}'\n", "source", ("'..' segment",)),
        ("  source: '{data_root}/{city}'\n  output: '{city}/out'\n", "output", ("scoring.output", "{data_root}")),
        ("  source: '{data_root}/{city}'\n  schedule: '@dayly'\n", "schedule", ("unknown schedule preset",)),
        ("  source: '{data_root}/{city}'\n  schedule: '61 * * * *'\n", "schedule", ("minute field",)),
        ("  source: '{data_root}/{city}'\n  schedule: null\n", "schedule", ("would never run", "on_new_data")),
        (
            "  source: '{data_root}/{city}'\n  schedule: '@once'\n  on_new_data: true\n",
            "schedule",
            ("'@once' cannot be combined with scoring.on_new_data", "cron"),
        ),
        ("  source: '{data_root}/{city}'\n  key_columns: [trip_idd]\n", "key_columns", ("trip_idd", "extra_columns")),
        ("  source: '{data_root}/{city}'\n  keep_columns: [hour, hour]\n", "keep_columns", ("more than once",)),
        ("  source: '{data_root}/{city}'\n  store: {conn_id: pg, table: 'drop table'}\n", "store", ("table",)),
        ("  source: '{data_root}/{city}'\n  shadows: true\n", "shadows", ("shadows",)),
    ],
)
def test_a_bad_scoring_section_is_refused_naming_line_field_and_fix(
    root: Path, body: str, needle: str, fragments: tuple[str, ...]
) -> None:
    path = write_city(root, "porto", f"city: porto\ntemplate: ride_duration\nscoring:\n{body}")

    exc = config_error(path, root)

    assert_points_at(exc, path, line_of(path, needle), *fragments)


def test_a_key_column_may_be_a_feature_or_an_extra_column() -> None:
    spec = ScoringSpec.model_validate({"source": "{data_root}/{city}", "key_columns": ["trip_id", "hour"]})

    assert spec.columns_problems(features=["hour"], known={"hour", "trip_id"}) == []
    [problem] = spec.columns_problems(features=["hour"], known={"hour"})
    assert "['trip_id']" in problem


@pytest.mark.parametrize(
    "output",
    [
        "/etc",
        "/etc/{data_root}",
        "{data_root}x",  # a sibling of the data root: /srv/datax
        "{data_root}/../../etc",
        "{data_root}/..\\\\etc",
        "file:///etc/airflow",
        "~/predictions",
        "relative/predictions",
        "https://other.example/predictions",
        "s3://",
        "s3://{data_root}/x",
        "",
    ],
)
def test_a_hostile_output_is_refused_naming_line_field_and_fix(root: Path, output: str) -> None:
    path = write_city(root, "porto", f"city: porto\ntemplate: ride_duration\n{SCORING}  output: {json.dumps(output)}\n")

    exc = config_error(path, root)

    assert_points_at(exc, path, line_of(path, "output"), "scoring.output")
    assert "{data_root}" in str(exc)
    assert "'..'" in str(exc) or "s3://<bucket>/<prefix>" in str(exc)


@pytest.mark.parametrize("output", ["{data_root}", "{data_root}/served", "s3://predictions-bucket/fleet"])
def test_an_output_under_the_data_root_or_on_s3_is_accepted(root: Path, output: str) -> None:
    path = write_city(root, "porto", f"city: porto\ntemplate: ride_duration\n{SCORING}  output: '{output}'\n")

    scoring = load_city_file(path, root / "templates").scoring

    assert scoring is not None
    assert scoring.output == output
