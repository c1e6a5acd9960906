"""The gate's rules in templates and cities: layering, and errors that name file, line, field and fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_ml.templates import load_city_file
from airflow_ml.templates.schema import file_schema
from tests.support.city_files import assert_points_at, config_error, line_of, write_city

CITY = "city: oslo\ntemplate: ride_duration\n"


def test_the_repo_template_turns_on_the_bootstrap_and_zone_slices(root: Path) -> None:
    gate = load_city_file(write_city(root, "oslo", CITY), root / "templates").gate

    assert gate.bootstrap is not None
    assert (gate.bootstrap.resamples, gate.bootstrap.confidence, gate.bootstrap.seed) == (1000, 0.95, 0)
    assert [s.column for s in gate.slices] == ["pickup_zone"]
    assert gate.slices[0].bins is None
    assert (gate.max_slice_regression, gate.min_slice_rows) == (0.10, 200)
    assert gate.min_quality is None


def test_a_city_layers_its_own_rules_over_the_template(root: Path) -> None:
    text = (
        CITY + "gate:\n  min_quality: {max_rmse: 12}\n  bootstrap: {confidence: 0.9}\n"
        "  slices:\n    - {column: weekday}\n  min_slice_rows: 50\n"
    )

    gate = load_city_file(write_city(root, "oslo", text), root / "templates").gate

    assert gate.min_quality is not None
    assert gate.min_quality.bound() == {"max_rmse": 12.0}
    assert gate.bootstrap is not None
    assert (gate.bootstrap.confidence, gate.bootstrap.resamples) == (0.9, 1000)  # mappings merge key by key
    assert [s.column for s in gate.slices] == ["weekday"]  # lists replace
    assert (gate.max_slice_regression, gate.min_slice_rows) == (0.10, 50)
    assert gate.min_improvement == 0.005  # untouched: the template's


def test_the_naive_baseline_is_on_by_default_and_a_city_sets_its_margin(root: Path) -> None:
    default = load_city_file(write_city(root, "oslo", CITY), root / "templates").gate.naive_baseline
    text = CITY + "gate:\n  naive_baseline: {min_skill: 0.05}\n"
    city = load_city_file(write_city(root, "bergen", text.replace("oslo", "bergen")), root / "templates").gate

    assert (default.enabled, default.statistic, default.min_skill) == (True, "mean", 0.0)
    assert (city.naive_baseline.enabled, city.naive_baseline.statistic) == (True, "mean")  # merged key by key
    assert city.naive_baseline.min_skill == 0.05


def test_promotion_mode_is_auto_unless_the_template_or_city_says_shadow_and_it_is_no_gate_rule(root: Path) -> None:
    from airflow_ml.ml.gate.rules import GateRules

    default = load_city_file(write_city(root, "oslo", CITY), root / "templates").gate
    text = CITY.replace("oslo", "bergen") + "gate:\n  promotion_mode: shadow\n"
    shadow = load_city_file(write_city(root, "bergen", text), root / "templates").gate

    assert (default.promotion_mode, shadow.promotion_mode) == ("auto", "shadow")
    assert "promotion_mode" not in shadow.rules()
    assert GateRules.from_dict(shadow.rules()) == GateRules.from_dict(default.rules())


def test_the_block_length_is_auto_by_default_and_a_city_fixes_it_in_rows(root: Path) -> None:
    from airflow_ml.ml.gate.rules import GateRules

    default = load_city_file(write_city(root, "oslo", CITY), root / "templates").gate
    text = CITY.replace("oslo", "bergen") + "gate:\n  bootstrap: {block_length: 48}\n"
    fixed = load_city_file(write_city(root, "bergen", text), root / "templates").gate

    assert default.bootstrap is not None
    assert fixed.bootstrap is not None
    assert (default.bootstrap.block_length, fixed.bootstrap.block_length) == ("auto", 48)
    assert fixed.bootstrap.resamples == 1000  # the template's other keys stay
    assert GateRules.from_dict(fixed.rules()).bootstrap == {
        "resamples": 1000,
        "confidence": 0.95,
        "seed": 0,
        "block_length": 48,
    }


def test_null_turns_the_bootstrap_off(root: Path) -> None:
    gate = load_city_file(write_city(root, "oslo", CITY + "gate:\n  bootstrap: null\n"), root / "templates").gate

    assert gate.bootstrap is None


@pytest.mark.parametrize(
    ("text", "needle", "fragments"),
    [
        (
            "gate:\n  min_quality: {min_rmse: 3}\n",
            "min_rmse",
            ("gate.min_quality.min_rmse", "did you mean 'max_rmse'?"),
        ),
        (
            "gate:\n  min_quality: {max_mae: 3}\n",
            "gate:",
            ("min_quality.max_mae", "the metric is 'rmse'", "write min_quality: {max_rmse: <bound>}"),
        ),
        ("gate:\n  min_quality: {max_rmse: -1}\n", "max_rmse", ("gate.min_quality.max_rmse", "-1")),
        ("gate:\n  bootstrap: {resample: 500}\n", "resample", ("'resample'", "did you mean 'resamples'?")),
        ("gate:\n  bootstrap: {resamples: 10}\n", "resamples", ("gate.bootstrap.resamples", "100")),
        ("gate:\n  bootstrap: {confidence: 1.5}\n", "confidence", ("gate.bootstrap.confidence", "1.5")),
        (
            "gate:\n  bootstrap: {block_length: 0}\n",
            "block_length",
            ("gate.bootstrap.block_length", "block_length 0 is neither auto nor a whole number", "block_length: auto"),
        ),
        ("gate:\n  bootstrap: {block_length: hourly}\n", "block_length", ("gate.bootstrap.block_length", "'hourly'")),
        ("gate:\n  bootstrap: {block_length: 2.5}\n", "block_length", ("gate.bootstrap.block_length", "2.5")),
        ("gate:\n  bootstrap: {block_length: true}\n", "block_length", ("gate.bootstrap.block_length", "True")),
        (
            "gate:\n  slices:\n    - {column: pickup_zon}\n",
            "gate:",
            ("slices[0].column", "'pickup_zon'", "did you mean 'pickup_zone'?"),
        ),
        ("gate:\n  slices:\n    - {colum: pickup_zone}\n", "colum", ("'colum'", "did you mean 'column'?")),
        (
            "gate:\n  slices:\n    - {column: duration_min}\n",
            "gate:",
            ("slices[0].column", "'duration_min' is the target"),
        ),
        (
            "gate:\n  slices:\n    - {column: pickup_zone, bins: [0, 1]}\n",
            "gate:",
            ("slices[0].bins", "'pickup_zone' is categorical", "remove bins"),
        ),
        (
            "gate:\n  slices:\n    - {column: pickup_hour, bins: [0, 12, 6]}\n",
            "bins",
            ("gate.slices.0.bins", "strictly increasing", "[0, 12, 6]"),
        ),
        ("gate:\n  slices:\n    - {column: pickup_hour, bins: [6]}\n", "bins", ("gate.slices.0.bins", "at least 2")),
        (
            "gate:\n  slices:\n    - {column: weekday}\n    - {column: weekday}\n",
            "slices:",
            ("gate.slices", "['weekday'] more than once"),
        ),
        ("gate:\n  max_slice_regression: -0.1\n", "max_slice_regression", ("gate.max_slice_regression", "-0.1")),
        ("gate:\n  min_slice_rows: 0\n", "min_slice_rows", ("gate.min_slice_rows", "0")),
        ("gate:\n  max_improvement: 0\n", "max_improvement", ("gate.max_improvement", "0")),
        ("gate:\n  max_improvement: 0.001\n", "gate:", ("must be above min_improvement 0.005",)),
        ("gate:\n  naive_baseline: {min_skill: 1.5}\n", "min_skill", ("gate.naive_baseline.min_skill", "1.5")),
        ("gate:\n  naive_baseline: {min_skill: -0.1}\n", "min_skill", ("gate.naive_baseline.min_skill", "-0.1")),
        ("gate:\n  naive_baseline: {statistic: mode}\n", "statistic", ("gate.naive_baseline.statistic", "'mode'")),
        ("gate:\n  naive_baseline: {min_skil: 0.1}\n", "min_skil", ("'min_skil'", "did you mean 'min_skill'?")),
        (
            "gate:\n  promotion_mode: force\n",
            "promotion_mode",
            ("gate.promotion_mode", "'force'", "'auto', 'require_approval' or 'shadow'"),
        ),
        ("gate:\n  promotion_mode: shadw\n", "promotion_mode", ("gate.promotion_mode", "'shadw'")),
        ("gate:\n  fleet_outlier: {max_z: 0}\n", "max_z", ("gate.fleet_outlier.max_z", "0", "greater than 0")),
        ("gate:\n  fleet_outlier: {max_z: -2}\n", "max_z", ("gate.fleet_outlier.max_z", "-2")),
        (
            "gate:\n  fleet_outlier: {min_siblings: 2}\n",
            "min_siblings",
            ("gate.fleet_outlier.min_siblings", "2", "greater than or equal to 3"),
        ),
        ("gate:\n  fleet_outlier: {min_history: 0}\n", "min_history", ("gate.fleet_outlier.min_history", "0")),
        ("gate:\n  fleet_outlier: {max_zz: 3}\n", "max_zz", ("'max_zz'", "did you mean 'max_z'?")),
        (
            "gate:\n  naive_baseline: {enabled: false}\n  fleet_outlier: {max_z: 4}\n",
            "gate:",
            (
                "fleet_outlier compares the challenger's skill over the naive baseline",
                "naive_baseline: {enabled: true}",
            ),
        ),
        (
            "gate:\n  accept_schema_change: {columns: [pickup_zone]}\n",
            "accept_schema_change",
            ("gate.accept_schema_change.reason", "required setting is missing"),
        ),
        (
            "gate:\n  accept_schema_change: {reason: ''}\n",
            "reason",
            ("gate.accept_schema_change.reason", "at least 1 character"),
        ),
        (
            "gate:\n  accept_schema_change: {reason: zones, columns: []}\n",
            "columns",
            ("gate.accept_schema_change.columns", "at least 1 item"),
        ),
        (
            "gate:\n  accept_schema_change: {reason: zones, change: 3f9a0c1b2d4e}\n",
            "change",
            ("gate.accept_schema_change.change", "'3f9a0c1b2d4e' is not a change's fingerprint", "gate's refusal"),
        ),
        (
            "gate:\n  level_tolerance: {new_level_max_share: 1.5}\n",
            "new_level_max_share",
            ("gate.level_tolerance.new_level_max_share", "less than or equal to 1"),
        ),
        (
            "gate:\n  accept_schema_change: {reason: zones, change: ['sha256:a34f49e373ad'], max_level_share: 2}\n",
            "max_level_share",
            ("gate.accept_schema_change.max_level_share", "less than or equal to 1"),
        ),
        (
            "gate:\n  level_tolerance: {ignore_removed: true}\n",
            "ignore_removed",
            ("gate.level_tolerance.ignore_removed", "replaced by removed_level_max_share", "1 tolerates every"),
        ),
    ],
)
def test_bad_gate_rules_name_file_line_field_and_fix(
    root: Path, text: str, needle: str, fragments: tuple[str, ...]
) -> None:
    path = write_city(root, "oslo", CITY + text)

    exc = config_error(path, root)

    assert_points_at(exc, path, line_of(path, needle), *fragments)


def test_a_bad_rule_in_the_template_names_the_template(root: Path) -> None:
    template = root / "templates" / "ride_duration.yaml"
    text = template.read_text(encoding="utf-8")
    assert "  max_slice_regression: 0.10" in text
    template.write_text(text.replace("  max_slice_regression: 0.10", "  max_slice_regression: lots"), "utf-8")
    path = write_city(root, "oslo", CITY)

    exc = config_error(path, root)

    assert_points_at(exc, template, line_of(template, "max_slice_regression: lots"), "gate.max_slice_regression")


def test_the_schema_documents_the_gate_rules() -> None:
    gate = file_schema("template")["$defs"]["GateSpec"]["properties"]

    assert {"min_quality", "bootstrap", "slices", "max_slice_regression", "min_slice_rows", "naive_baseline"} <= set(
        gate
    )
    assert "max_rmse" in file_schema("template")["$defs"]["QualityBound"]["properties"]


def test_relative_min_improvement_must_be_below_one(root: Path) -> None:
    path = write_city(root, "oslo", "city: oslo\ntemplate: ride_duration\ngate:\n  min_improvement: 1.5\n")

    exc = config_error(path, root)

    assert_points_at(exc, path, line_of(path, "gate:"), "gate", "min_improvement", "1.5", "below 1")


def test_absolute_min_improvement_may_exceed_one(root: Path) -> None:
    path = write_city(
        root,
        "oslo",
        "city: oslo\ntemplate: ride_duration\ngate:\n  min_improvement: 1.5\n  improvement_mode: absolute\n",
    )

    assert load_city_file(path, root / "templates").gate.min_improvement == 1.5


def test_max_improvement_is_off_by_default_and_reaches_the_gate_rules_when_set(root: Path) -> None:
    from airflow_ml.factory.tasks import task_settings

    default = load_city_file(write_city(root, "oslo", CITY), root / "templates")
    text = CITY.replace("oslo", "bergen") + "gate:\n  max_improvement: 0.4\n"
    city = load_city_file(write_city(root, "bergen", text), root / "templates")

    assert default.gate.max_improvement is None
    assert task_settings(default, expectations_dir=root).gate.rules.max_improvement is None
    assert task_settings(city, expectations_dir=root).gate.rules.max_improvement == 0.4


def test_fleet_outlier_is_off_by_default_and_reaches_the_gate_rules_with_the_fleet_scope(root: Path) -> None:
    from airflow_ml.factory.tasks import task_settings
    from airflow_ml.ml.gate.fleet_outlier import FleetOutlier
    from airflow_ml.ml.gate.schema_change import AcceptSchemaChange, LevelTolerance

    default = load_city_file(write_city(root, "oslo", CITY), root / "templates")
    text = CITY.replace("oslo", "bergen") + (
        "gate:\n  fleet_outlier: {max_z: 3.5, min_siblings: 10}\n"
        "  accept_schema_change: {reason: a new zone opened, change: 'sha256:3f9a0c1b2d4e', columns: [pickup_zone],\n"
        "    max_level_share: 0.2}\n"
        "  level_tolerance: {new_level_max_share: 0.02, removed_level_max_share: 0}\n"
    )
    city = load_city_file(write_city(root, "bergen", text), root / "templates")

    assert (default.gate.fleet_outlier, default.gate.accept_schema_change) == (None, None)
    gate = task_settings(city, expectations_dir=root).gate
    assert gate.rules.fleet_outlier == FleetOutlier(max_z=3.5, min_siblings=10, min_history=3)
    assert gate.rules.accept_schema_change == AcceptSchemaChange(
        "a new zone opened", ("pickup_zone",), "sha256:3f9a0c1b2d4e", max_level_share=0.2
    )
    assert gate.rules.level_tolerance == LevelTolerance(new_level_max_share=0.02, removed_level_max_share=0.0)
    assert default.gate.level_tolerance.new_level_max_share == 0.01
    assert default.gate.level_tolerance.removed_level_max_share == 0.001  # one default: the rules' own
    assert LevelTolerance().removed_level_max_share == default.gate.level_tolerance.removed_level_max_share
    # A list of item fingerprints (one per changed column and kind), as the refusal shows it.
    listed = text.replace("change: 'sha256:3f9a0c1b2d4e'", "change: ['sha256:3f9a0c1b2d4e', 'sha256:0824743e57a3']")
    both = load_city_file(write_city(root, "trondheim", listed.replace("bergen", "trondheim")), root / "templates")
    assert task_settings(both, expectations_dir=root).gate.rules.accept_schema_change.change == (
        "sha256:3f9a0c1b2d4e",
        "sha256:0824743e57a3",
    )
    assert (gate.template, list(gate.not_cities)) == ("ride_duration", ["global"])
    assert type(gate).from_dict(gate.to_dict()).rules == gate.rules
