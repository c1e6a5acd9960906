"""``gx_context:`` in a template or city file: an existing GX context's checks, with precise errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from airflow_ml.exceptions import ConfigError
from airflow_ml.factory.dag_doc import retrain_doc
from airflow_ml.factory.tasks import task_settings
from airflow_ml.ml.steps.validation_settings import GxContextSettings
from airflow_ml.templates import load_city_file
from tests.support.city_files import config_error, line_of, write_city

CITY = "city: oslo\ntemplate: ride_duration\n"


def test_a_city_names_a_checkpoint_of_a_gx_context_and_its_validate_task_gets_it(root: Path) -> None:
    path = write_city(root, "oslo", CITY + "gx_context: {path: gx, checkpoint: nightly trips}\n")

    config = load_city_file(path, root / "templates")
    settings = task_settings(config, expectations_dir=root / "expectations").validation

    assert settings.suite == "ride_trips"  # the template's suite still runs: the context's checks come besides
    assert settings.gx_context == GxContextSettings("gx", str(root), checkpoint="nightly trips")
    assert type(settings).from_dict(settings.to_dict()) == settings  # as the operator gets it
    assert "validate (suite `ride_trips` and GX context `gx` checkpoint `nightly trips`)" in retrain_doc(config)


def test_a_template_may_validate_with_a_gx_context_alone(root: Path) -> None:
    template = root / "templates" / "ride_duration.yaml"
    text = template.read_text(encoding="utf-8").replace("suite: ride_trips", "gx_context: {path: gx, suite: trips}")
    template.write_text(text, encoding="utf-8")

    config = load_city_file(write_city(root, "oslo", CITY), root / "templates")

    assert config.suite is None
    assert config.gx_context is not None
    assert config.gx_context.suite == "trips"


def test_without_a_suite_or_a_gx_context_nothing_would_validate_the_data(root: Path) -> None:
    template = root / "templates" / "ride_duration.yaml"
    template.write_text(re.sub(r"^suite:.*\n", "", template.read_text(encoding="utf-8"), flags=re.M), encoding="utf-8")

    text = str(config_error(write_city(root, "oslo", CITY), root))

    assert "nothing validates the data" in text
    assert "gx_context" in text


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("{path: ../shared/gx, suite: trips}", "leaves the project folder"),
        ("{path: /srv/gx, suite: trips}", "not a path relative to the project folder"),
        ("{path: '~/gx', suite: trips}", "not a path relative to the project folder"),
        ("{path: gx}", "name exactly one of gx_context.checkpoint"),
        ("{path: gx, suite: trips, checkpoint: nightly}", "sets the other to null (e.g. 'gx_context: {checkpoint"),
        ("{path: gx, suite: ../trips}", "gx_context.suite"),
        ("{path: gx, checkpoint: nightly, actions: []}", "actions"),
        ('{path: "gx\\0x", suite: trips}', "holds a control character"),
    ],
)
def test_a_bad_gx_context_is_refused_naming_the_field_and_line(root: Path, value: str, fragment: str) -> None:
    path = write_city(root, "oslo", CITY + f"gx_context: {value}\n")

    error = config_error(path, root)

    assert isinstance(error, ConfigError)
    assert f"line {line_of(path, 'gx_context')}" in str(error)
    assert fragment in str(error)


def test_the_suites_guide_shows_a_gx_context_the_loader_accepts(root: Path) -> None:
    import yaml

    from tests.support import REPO

    guide = (REPO / "docs" / "guides" / "suites.md").read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"```yaml\n(.*?)```", guide, flags=re.S) if "gx_context:" in b]
    assert len(blocks) == 1
    shown = yaml.safe_load(blocks[0])

    path = write_city(root, "oslo", CITY + "gx_context: " + json.dumps(shown["gx_context"]) + "\n")

    config = load_city_file(path, root / "templates")
    assert config.gx_context is not None
    assert (config.gx_context.path, config.gx_context.checkpoint) == ("gx", "nightly_trips")
