"""Every number of every spec is bounded, types are strict, schedules are five-field crons, sources stay plain."""

from __future__ import annotations

import re
import types
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import annotated_types
import pytest
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from airflow_ml.templates import load_city_configs
from airflow_ml.templates.models import CityConfig, ParentConfig, TemplateConfig, slugify
from tests.support.city_files import assert_points_at, config_error, line_of, template_data, write_city

CITY = "city: porto\ntemplate: ride_duration\n"


def _problems(root: Path, text: str) -> list[str]:
    path = write_city(root, "porto", CITY + text)
    configs, errors = load_city_configs(root)
    assert configs == [], "expected the city to be refused"
    [error] = errors
    assert error.file == str(path)
    return error.problems


# --- 7a. Bounds everywhere ---------------------------------------------------------------------------------------


def _models(model: type[BaseModel], seen: dict[str, type[BaseModel]]) -> dict[str, type[BaseModel]]:
    if model.__name__ not in seen:
        seen[model.__name__] = model
        for field in model.model_fields.values():
            for leaf in _leaves(field.annotation):
                if isinstance(leaf, type) and issubclass(leaf, BaseModel):
                    _models(leaf, seen)
    return seen


def _leaves(annotation: Any) -> list[Any]:
    """The types inside unions, lists, dicts and Annotated."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _leaves(get_args(annotation)[0])
    if origin in (Union, types.UnionType, list, dict):
        return [leaf for arg in get_args(annotation) for leaf in _leaves(arg)]
    return [annotation]


def _numbers(annotation: Any, constraints: list[Any]) -> list[tuple[Any, list[Any]]]:
    """Each int or float inside ``annotation``, with the constraints that apply to it."""
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *extra = get_args(annotation)
        found: list[Any] = []
        for item in extra:
            found += item.metadata if isinstance(item, FieldInfo) else [item]
        return _numbers(base, [*constraints, *found])
    if origin in (Union, types.UnionType):
        return [n for arg in get_args(annotation) for n in _numbers(arg, constraints)]
    if origin in (list, dict):  # the container's own constraints (min_length...) do not bound its items
        return [n for arg in get_args(annotation) for n in _numbers(arg, [])]
    return [(annotation, constraints)] if annotation in (int, float) else []


def _bounded(constraints: list[Any]) -> tuple[bool, bool]:
    low = any(isinstance(c, annotated_types.Ge | annotated_types.Gt) for c in constraints)
    high = any(isinstance(c, annotated_types.Le | annotated_types.Lt) for c in constraints)
    return low, high


def test_every_number_of_every_spec_has_a_lower_and_an_upper_bound() -> None:
    models: dict[str, type[BaseModel]] = {}
    for top in (CityConfig, TemplateConfig, ParentConfig):
        _models(top, models)
    checked, unbounded = 0, []
    for name, model in sorted(models.items()):
        for field_name, field in model.model_fields.items():
            for kind, constraints in _numbers(field.annotation, list(field.metadata)):
                checked += 1
                low, high = _bounded(constraints)
                if not (low and high):
                    unbounded.append(f"{name}.{field_name} ({kind.__name__}): lower {low}, upper {high}")
    assert unbounded == []
    assert checked > 40  # the walk reaches the nested specs (training, gate, drift, health, search ranges...)
    assert {"LightGBMParams", "SearchSpec", "SliceSpec", "DriftFraction", "BootstrapSpec"} <= set(models)


def test_the_walk_finds_an_unbounded_number() -> None:
    from pydantic import Field

    from airflow_ml.templates.base import Strict

    class Loose(Strict):
        bounded: int = Field(default=1, ge=0, le=5)
        half: float | None = Field(default=None, ge=0)
        items: list[Annotated[float, Field(ge=0)]] = []

    found = {
        name: _bounded(constraints)
        for name, field in Loose.model_fields.items()
        for _, constraints in _numbers(field.annotation, list(field.metadata))
    }
    assert found == {"bounded": (True, True), "half": (True, False), "items": (True, False)}


@pytest.mark.parametrize(
    ("text", "field", "fragment"),
    [
        ("training:\n  num_threads: 100000\n", "training.num_threads", "less than or equal to 1024"),
        ("training:\n  seed: 99999999999\n", "training.seed", "less than or equal to 2147483647"),
        ("training:\n  early_stopping_rounds: 10000000\n", "training.early_stopping_rounds", "100000"),
        ("training:\n  params: {max_depth: 5000}\n", "training.params.max_depth", "1024"),
        ("training:\n  params: {bagging_freq: 1000000}\n", "training.params.bagging_freq", "100000"),
        ("training:\n  params: {lambda_l2: 1.0e+9}\n", "training.params.lambda_l2", "1000000"),
        ("training:\n  params: {min_data_in_leaf: 1000000000}\n", "training.params.min_data_in_leaf", "100000000"),
        ("gate:\n  bootstrap: {seed: 5000000000}\n", "gate.bootstrap.seed", "2147483647"),
        ("health:\n  max_mean_shift: 1.0e+6\n", "health.max_mean_shift", "1000"),
    ],
)
def test_a_number_beyond_its_bound_is_refused_naming_the_field(
    root: Path, text: str, field: str, fragment: str
) -> None:
    problems = _problems(root, text)

    assert len(problems) == 1
    assert f"porto.yaml line 4: {field}: Input should be" in problems[0]
    assert fragment in problems[0]


# --- 7a. Strict types --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "field", "fix"),
    [
        ("training:\n  num_boost_round: true\n", "training.num_boost_round", "write a whole number without quotes"),
        ("training:\n  num_boost_round: '400'\n", "training.num_boost_round", "write a whole number without quotes"),
        ("training:\n  params: {num_leaves: 31.0}\n", "training.params.num_leaves", "write a whole number"),
        ("training:\n  params: {learning_rate: '0.1'}\n", "training.params.learning_rate", "write a number"),
        ("drift:\n  enabled: 'yes'\n", "drift.enabled", "write true or false without quotes"),
        ("display_name: 1234\n", "display_name", "write text"),
        ("training:\n  search: {params: {num_leaves: [8, '256']}}\n", "training.search.params", "must be numbers"),
    ],
)
def test_a_value_of_the_wrong_type_is_refused_not_coerced(root: Path, text: str, field: str, fix: str) -> None:
    problems = _problems(root, text)

    assert len(problems) == 1
    assert f": {field}" in problems[0]
    assert fix in problems[0]


def test_a_whole_number_is_still_a_valid_float(root: Path) -> None:
    write_city(
        root, "porto", CITY + "training:\n  params: {learning_rate: 1, lambda_l1: 3}\ngate:\n  min_improvement: 0\n"
    )

    [config], errors = load_city_configs(root)

    assert errors == []
    assert config.training.params.learning_rate == 1.0
    assert isinstance(config.training.params.lambda_l1, float)


# --- 7a. Source patterns -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source", ["{data_root}/raw/{city:>50000000}", "{data_root!r}/raw/{city}", "{data_root:{city}}/{city}"]
)
def test_a_source_pattern_with_a_format_spec_or_conversion_is_refused(root: Path, source: str) -> None:
    problems = _problems(root, f'dataset:\n  source: "{source}"\n')

    assert len(problems) == 1
    assert "porto.yaml line 3: dataset:" in problems[0]
    assert "write the placeholders bare: {data_root} and {city}" in problems[0]


# --- 5. Cron -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "fragment"),
    [
        ("*/5 * * * * *", "has 6 field(s); a cron expression has five"),
        ("0 0 2 * * * 2027", "has 7 field(s); a cron expression has five"),
        ("0 2 * *", "has 4 field(s)"),
        ("0 25 * * *", "the hour field '25' is out of range or malformed; the hour takes 0-23"),
        ("61 * * * *", "the minute field '61' is out of range or malformed; the minute takes 0-59"),
        ("0 2 32 * *", "the day of month field '32'"),
        ("0 2 * 13 *", "the month field '13'"),
        ("0 2 * * 8", "the day of week field '8'"),
        ("0 2 * * MOX", "the day of week field 'MOX'"),
    ],
)
def test_only_five_field_crons_name_the_wrong_field(root: Path, schedule: str, fragment: str) -> None:
    problems = _problems(root, f'dag:\n  schedule: "{schedule}"\n')

    assert len(problems) == 1
    assert f"porto.yaml line 4: dag.schedule: Value error, {schedule!r}" in problems[0] or (
        f"porto.yaml line 4: dag.schedule: {schedule!r}" in problems[0]
    )
    assert fragment in problems[0]
    if "field(s)" not in fragment:
        assert "five" not in problems[0]  # it has five fields: say which one is wrong instead


def test_six_fields_say_seconds_are_not_supported(root: Path) -> None:
    [problem] = _problems(root, 'dag:\n  schedule: ["0 2 * * *", "*/5 * * * * *"]\n')

    assert "a sixth field would be seconds" in problem


@pytest.mark.parametrize("schedule", ["0 2 * * 1-5", "*/15 * * * *", "0 2 L * *", "0 6 * * SUN,SAT", "0 2 * JAN-MAR *"])
def test_five_field_crons_still_load(root: Path, schedule: str) -> None:
    write_city(root, "porto", CITY + f'dag:\n  schedule: "{schedule}"\n')

    [config], errors = load_city_configs(root)

    assert errors == []
    assert config.dag.schedule == schedule


@pytest.mark.parametrize("source", ["{data_root}/../outside/{city}", "{data_root}/raw/..\\\\..\\\\x/{city}"])
def test_a_source_pattern_with_a_dotdot_segment_is_refused(root: Path, source: str) -> None:
    problems = _problems(root, f'dataset:\n  source: "{source}"\n')

    assert len(problems) == 1
    assert "porto.yaml line 3: dataset:" in problems[0]
    assert "has a '..' segment, which leads out of the data root; drop it" in problems[0]


@pytest.mark.parametrize(("name", "slug"), [("São Paulo", "sao_paulo"), ("Köln-Bonn", "koln_bonn"), ("42", "city_42")])
def test_slugify_suggests_a_valid_city_id(name: str, slug: str) -> None:
    assert slugify(name) == slug
    assert re.fullmatch(r"[a-z][a-z0-9_]{0,62}", slugify(name))


def test_categorical_feature_must_be_a_feature(root: Path) -> None:
    path = write_city(
        root, "oslo", "city: oslo\ntemplate: ride_duration\ndataset:\n  categorical_features: [weather]\n"
    )

    exc = config_error(path, root)

    assert_points_at(exc, path, line_of(path, "dataset:"), "dataset", "'weather'", "add them to features")


def test_target_listed_as_feature_is_refused(root: Path) -> None:
    target = template_data()["dataset"]["target"]
    path = write_city(
        root,
        "oslo",
        f"city: oslo\ntemplate: ride_duration\ndataset:\n  features: [distance_km, pickup_zone, {target}]\n",
    )

    exc = config_error(path, root)

    assert_points_at(exc, path, line_of(path, "dataset:"), "dataset", repr(target), "remove it from features")


# --- Display names -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('display_name: "São\\nPaulo"\n', "control character '\\n' at position 3"),
        ('display_name: "São\\tPaulo"\n', "control character '\\t' at position 3"),
        ('display_name: " São Paulo"\n', "starts or ends with a space"),
        (f"display_name: {'x' * 81}\n", "at most 80 characters"),
    ],
)
def test_a_display_name_that_is_not_one_short_line_is_refused(root: Path, text: str, fragment: str) -> None:
    problems = _problems(root, text)

    assert len(problems) == 1
    assert "porto.yaml line 3: display_name" in problems[0]
    assert fragment in problems[0]


def test_a_display_name_keeps_its_accents(root: Path) -> None:
    write_city(root, "porto", CITY + "display_name: São Paulo · Centro\n")

    [config], errors = load_city_configs(root)

    assert errors == []
    assert config.title == "São Paulo · Centro"
