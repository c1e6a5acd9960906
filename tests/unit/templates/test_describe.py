"""How a validation error reads: file, line, field, the value quoted, and the fix (airflow_ml.templates.describe)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.city_files import (
    assert_points_at,
    config_error,
    line_of,
    write_city,
)


def test_unknown_nested_key_suggests_the_right_one(root: Path) -> None:
    path = write_city(
        root, "oslo", "city: oslo\ntemplate: ride_duration\ntraining:\n  params:\n    learnin_rate: 0.1\n"
    )

    exc = config_error(path, root)

    assert_points_at(
        exc,
        path,
        line_of(path, "learnin_rate"),
        "training.params.learnin_rate",
        "'learnin_rate'",
        "did you mean 'learning_rate'?",
    )


def test_unknown_top_level_key_suggests_the_right_one(root: Path) -> None:
    path = write_city(root, "oslo", "city: oslo\ntemplate: ride_duration\ntrainig:\n  seed: 1\n")

    exc = config_error(path, root)

    assert_points_at(exc, path, line_of(path, "trainig"), "'trainig'", "did you mean 'training'?")


def test_wrong_type_names_field_and_quotes_value(root: Path) -> None:
    path = write_city(
        root, "oslo", "city: oslo\ntemplate: ride_duration\n\ntraining:\n  params:\n    num_leaves: many\n"
    )

    exc = config_error(path, root)

    text = assert_points_at(exc, path, line_of(path, "num_leaves"), "training.params.num_leaves", "'many'")
    assert "integer" in text


def test_out_of_range_value_is_an_error(root: Path) -> None:
    path = write_city(
        root, "oslo", "city: oslo\ntemplate: ride_duration\ntraining:\n  params:\n    learning_rate: -0.1\n"
    )

    exc = config_error(path, root)

    assert_points_at(exc, path, line_of(path, "learning_rate"), "training.params.learning_rate", "-0.1")


def test_missing_required_template_field_names_the_template(root: Path) -> None:
    template = root / "templates" / "ride_duration.yaml"
    text = template.read_text(encoding="utf-8")
    assert re.search(r"^  target: .*\n", text, flags=re.MULTILINE)
    template.write_text(re.sub(r"^  target: .*\n", "", text, flags=re.MULTILINE), encoding="utf-8")
    path = write_city(root, "oslo", "city: oslo\ntemplate: ride_duration\n")

    exc = config_error(path, root)

    assert_points_at(exc, template, line_of(template, "dataset:"), "dataset.target", "missing")
