"""The ``drift:`` section of templates and cities: layering, defaults and errors that name file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_ml.templates import load_city_file
from airflow_ml.templates.drift_spec import DRIFT_DEFAULTS, DriftSpec
from airflow_ml.templates.schema import file_schema
from tests.support.city_files import assert_points_at, config_error, line_of, write_city

CITY = "city: oslo\ntemplate: ride_duration\n"


def test_defaults_apply_without_a_drift_section() -> None:
    spec = DriftSpec()

    assert spec.enabled is True
    assert spec.psi_bins == 10
    thresholds = spec.thresholds()
    assert {k: thresholds[k] for k in DRIFT_DEFAULTS} == DRIFT_DEFAULTS
    assert thresholds["features"] == {}


def test_a_city_overrides_one_threshold_and_keeps_the_other_default(root: Path) -> None:
    path = write_city(root, "oslo", CITY + "drift:\n  psi: {error: 0.5}\n  js_distance: {warn: null}\n")

    drift = load_city_file(path, root / "templates").drift

    assert (drift.psi.warn, drift.psi.error) == (DRIFT_DEFAULTS["psi"]["warn"], 0.5)
    assert (drift.js_distance.warn, drift.js_distance.error) == (None, DRIFT_DEFAULTS["js_distance"]["error"])


def test_per_column_limits_hold_only_what_they_set_and_null_turns_a_check_off(root: Path) -> None:
    path = write_city(
        root,
        "oslo",
        CITY + "drift:\n  features:\n    distance_km: {psi: {error: 1.0}}\n    temperature_c: {psi: null}\n"
        "    duration_min: {psi: {warn: 0.2}}\n",
    )

    thresholds = load_city_file(path, root / "templates").drift.thresholds()

    assert thresholds["features"] == {
        "distance_km": {"psi": {"error": 1.0}},
        "temperature_c": {"psi": {"warn": None, "error": None}},
        "duration_min": {"psi": {"warn": 0.2}},  # the target: below label_psi.error (0.25)
    }


def test_unknown_drift_feature_names_file_line_and_suggests_the_column(root: Path) -> None:
    path = write_city(root, "oslo", CITY + "display_name: Oslo\ndrift:\n  features:\n    distnce_km: {psi: {}}\n")

    exc = config_error(path, root)

    hint = "did you mean 'distance_km'?"
    assert_points_at(exc, path, line_of(path, "drift:"), "drift", "features.distnce_km", "'distnce_km'", hint)


def test_a_categorical_feature_takes_js_distance_not_psi(root: Path) -> None:
    path = write_city(root, "oslo", CITY + "drift:\n  features:\n    pickup_zone: {psi: {error: 1}}\n")

    exc = config_error(path, root)

    assert_points_at(exc, path, line_of(path, "drift:"), "features.pickup_zone.psi", "rename the key to js_distance")


def test_warn_above_error_is_refused(root: Path) -> None:
    path = write_city(root, "oslo", CITY + "drift:\n  psi:\n    warn: 0.5\n    error: 0.3\n")

    exc = config_error(path, root)

    assert_points_at(exc, path, line_of(path, "psi:"), "drift.psi", "warn 0.5 is above error 0.3")


def test_warn_above_an_inherited_error_is_refused_and_says_where_error_comes_from(root: Path) -> None:
    path = write_city(root, "oslo", CITY + "drift:\n  features:\n    distance_km: {psi: {warn: 0.4}}\n")

    exc = config_error(path, root)

    assert_points_at(
        exc, path, line_of(path, "drift:"), "features.distance_km.psi", "warn 0.4 is above error 0.25", "drift.psi"
    )


@pytest.mark.parametrize(
    ("text", "needle", "fragments"),
    [
        ("drift:\n  js_distance: {error: 1.5}\n", "js_distance", ("drift.js_distance.error", "1.5")),
        ("drift:\n  psi: {warn: -0.1}\n", "psi", ("drift.psi.warn", "-0.1")),
        ("drift:\n  missing_rate_change: {warn: 2}\n", "missing_rate_change", ("drift.missing_rate_change.warn",)),
        ("drift:\n  psi_bins: 1\n", "psi_bins", ("drift.psi_bins",)),
        ("drift:\n  compare: new\n", "compare", ("drift.compare", "'new_rows' or 'whole_snapshot'", "'new'")),
        ("drift:\n  min_new_rows: 0\n", "min_new_rows", ("drift.min_new_rows", "greater than or equal to 1")),
        ("drift:\n  min_new_days: 1000\n", "min_new_days", ("drift.min_new_days", "less than or equal to 366")),
        ("drift:\n  pssi: {warn: 0.1}\n", "pssi", ("'pssi'", "did you mean 'psi'?")),
        ("drift:\n  calibration:\n    q: 1\n", "q: 1", ("drift.calibration.q", "less than 1")),
        ("drift:\n  calibration:\n    q: 0\n", "q: 0", ("drift.calibration.q", "greater than 0")),
        ("drift:\n  calibration:\n    min_history: 4\n", "min_history", ("drift.calibration.min_history", "5")),
        ("drift:\n  calibration:\n    min_flagged: 0\n", "min_flagged", ("drift.calibration.min_flagged",)),
        ("drift:\n  calibration:\n    season: week\n", "season", ("drift.calibration.season", "'month'")),
        ("drift:\n  calibration:\n    max_age_days: 0\n", "max_age", ("drift.calibration.max_age_days", "1")),
        ("drift:\n  calibration:\n    qq: 0.1\n", "qq", ("'qq'", "did you mean 'q'?")),
        ("drift:\n  features:\n    distance_km: {psi: {wran: 0.1}}\n", "wran", ("'wran'", "did you mean 'warn'?")),
    ],
)
def test_out_of_range_or_unknown_drift_settings_name_line_and_field(
    root: Path, text: str, needle: str, fragments: tuple[str, ...]
) -> None:
    path = write_city(root, "oslo", CITY + text)

    exc = config_error(path, root)

    assert_points_at(exc, path, line_of(path, needle), *fragments)


def test_an_error_in_the_template_names_the_template(root: Path) -> None:
    template = root / "templates" / "ride_duration.yaml"
    text = template.read_text(encoding="utf-8")
    assert "  psi: {warn: 0.1, error: 0.25}" in text
    template.write_text(text.replace("  psi: {warn: 0.1, error: 0.25}", "  psi: {warn: 0.1, error: high}"), "utf-8")
    path = write_city(root, "oslo", CITY)

    exc = config_error(path, root)

    assert_points_at(exc, template, line_of(template, "error: high"), "drift.psi.error", "'high'")


def test_schema_documents_the_drift_defaults() -> None:
    definitions = file_schema("template")["$defs"]

    drift = definitions["DriftSpec"]["properties"]
    assert drift["psi"]["default"] == DRIFT_DEFAULTS["psi"]
    assert drift["label_js_distance"]["default"] == DRIFT_DEFAULTS["label_js_distance"]
    assert definitions["DriftFraction"]["properties"]["error"]["anyOf"][0]["maximum"] == 1


def test_calibration_defaults_and_a_city_that_sets_them(root: Path) -> None:
    assert DriftSpec().calibration.model_dump() == {
        "enabled": True,
        "q": 0.05,
        "min_history": 20,
        "min_flagged": 2,
        "seasonal": [],
        "season": "month",
        "max_age_days": 45,
    }
    text = (
        "drift:\n  calibration: {q: 0.1, min_history: 30, min_flagged: 3, seasonal: [distance_km], max_age_days: 10}\n"
    )
    path = write_city(root, "oslo", CITY + text)

    calibration = load_city_file(path, root / "templates").drift.calibration

    assert (calibration.q, calibration.min_history, calibration.min_flagged) == (0.1, 30, 3)
    assert calibration.seasonal == ["distance_km"]
    assert calibration.max_age_days == 10


def test_a_seasonal_column_that_is_no_feature_names_file_line_and_the_closest_column(root: Path) -> None:
    path = write_city(root, "oslo", CITY + "drift:\n  calibration:\n    seasonal: [distnce_km]\n")

    exc = config_error(path, root)

    assert_points_at(
        exc, path, line_of(path, "drift:"), "calibration.seasonal", "'distnce_km'", "did you mean 'distance_km'?"
    )


def test_the_family_age_limit_has_one_default_everywhere() -> None:
    from airflow_ml.ml.drift_calibration import CalibrationRules
    from airflow_ml.ml.steps.step_settings import DriftReviewSettings
    from airflow_ml.templates.drift_spec import DEFAULT_MAX_AGE_DAYS, CalibrationSpec

    defaults = {
        CalibrationSpec().max_age_days,
        CalibrationRules().max_age_days,
        DriftReviewSettings(template="t", cities={}).max_age_days,
    }
    assert defaults == {DEFAULT_MAX_AGE_DAYS}
