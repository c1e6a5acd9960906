"""A run's overrides: the form's bounds are the YAML's, values arrive typed, a bad conf is named with its fix."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from airflow_ml.factory.params import trigger_params
from airflow_ml.operators.overrides import FIELDS, OverrideError, RunOverrides, conf_problems
from airflow_ml.templates import load_city_file
from airflow_ml.templates.training_spec import LightGBMParams, SearchSpec, TrainingSpec
from tests.support import REPO

#: Each numeric Param of the form and the template field it overrides (written out here, not imported).
OVERRIDDEN: dict[str, tuple[type[BaseModel], str]] = {
    "num_boost_round": (TrainingSpec, "num_boost_round"),
    "learning_rate": (LightGBMParams, "learning_rate"),
    "num_leaves": (LightGBMParams, "num_leaves"),
    "min_data_in_leaf": (LightGBMParams, "min_data_in_leaf"),
    "search_trials": (SearchSpec, "trials"),
    "search_timeout_minutes": (SearchSpec, "timeout_minutes"),
}
BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")


@pytest.fixture(scope="module")
def form() -> dict[str, Any]:
    config = load_city_file(REPO / "dag_templates" / "cities" / "berlin.yaml", REPO / "dag_templates" / "templates")
    return trigger_params(config)


def _field_schema(model: type[BaseModel], field: str) -> dict[str, Any]:
    return model.model_json_schema()["properties"][field]


@pytest.mark.parametrize("name", sorted(OVERRIDDEN))
def test_each_numeric_param_of_the_form_has_the_type_and_bounds_of_its_template_field(
    form: dict[str, Any], name: str
) -> None:
    """The form takes exactly the values the YAML takes, without ``minimum``/``maximum`` (the UI clamps to those)."""
    from airflow.sdk.exceptions import ParamValidationError

    model, field = OVERRIDDEN[name]
    expected = _field_schema(model, field)
    param = form[name]

    assert param.schema["type"] == ["null", expected["type"]]
    assert not {"minimum", "maximum"} & set(param.schema)
    step = 1 if expected["type"] == "integer" else 1e-9
    edges = [(expected[k], True) for k in ("minimum", "maximum") if k in expected]
    edges += [(expected["exclusiveMinimum"], False)] if "exclusiveMinimum" in expected else []
    edges += [(expected.get("minimum", expected.get("exclusiveMinimum", 0)) - step, False)]
    edges += [(expected["maximum"] + step, False)] if "maximum" in expected else []
    for value, accepted in edges:
        try:
            model.model_validate({field: value})
            yaml_accepts = True
        except ValidationError:
            yaml_accepts = False
        try:
            param.resolve(value)
            form_accepts = True
        except ParamValidationError:
            form_accepts = False
        assert form_accepts == yaml_accepts == accepted, (name, value)
    param.resolve(None)  # empty keeps the template's value


def test_num_leaves_is_bounded_alike_in_the_form_and_the_yaml(form: dict[str, Any]) -> None:
    yaml_max = _field_schema(LightGBMParams, "num_leaves")["maximum"]

    form["num_leaves"].resolve(yaml_max)  # the form takes what the YAML takes...
    LightGBMParams(num_leaves=yaml_max)
    from airflow.sdk.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError):  # ...and refuses what it refuses
        form["num_leaves"].resolve(yaml_max + 1)
    with pytest.raises(ValidationError):
        LightGBMParams(num_leaves=yaml_max + 1)
    with pytest.raises(OverrideError, match=f"num_leaves={yaml_max + 1}"):
        RunOverrides.from_params({"num_leaves": yaml_max + 1})


def test_the_form_holds_exactly_the_overrides_in_their_order(form: dict[str, Any]) -> None:
    assert tuple(form) == FIELDS


def test_overrides_arrive_typed_and_none_keeps_the_template_value() -> None:
    overrides = RunOverrides.from_params(
        {
            "num_boost_round": 7,
            "learning_rate": 1,  # a JSON integer is a number
            "num_leaves": None,
            "window_start": "2026-01-05",
            "promotion_mode": "dry_run",
            "reason": "a try\twith a tab\nand two lines",
            "not_an_override": "left to the caller",
        }
    )

    assert overrides.num_boost_round == 7
    assert overrides.num_leaves is None
    assert overrides.window_start == dt.date(2026, 1, 5)
    assert overrides.lgbm_params() == {"learning_rate": 1}
    assert overrides.dry_run
    assert RunOverrides.from_dict(overrides.to_dict()) == overrides
    assert RunOverrides.from_params({}) == RunOverrides()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"num_boost_round": "400"}, "num_boost_round: expected an integer, got '400'"),
        ({"num_boost_round": True}, "num_boost_round: expected an integer, got True"),
        ({"num_leaves": 31.0}, "num_leaves: expected an integer, got 31.0"),
        ({"learning_rate": 0}, "learning_rate=0: Input should be greater than 0"),
        ({"window_end": "last friday"}, "window_end: expected a date YYYY-MM-DD, got 'last friday'"),
        ({"promotion_mode": "always"}, "promotion_mode 'always' is not a mode"),
        ({"promotion_mode": "force", "reason": "  "}, "promotion_mode 'force' needs a reason"),
        ({"window_start": "2026-02-01", "window_end": "2026-01-01"}, "window_start 2026-02-01 is after window_end"),
        ({"reason": "oops\x00"}, r"reason holds a control character \(U\+0000 at position 4\); remove it"),
    ],
)
def test_a_bad_override_is_refused_naming_the_field(params: dict[str, Any], message: str) -> None:
    with pytest.raises(OverrideError, match=message):
        RunOverrides.from_params(params)


def test_an_unknown_conf_key_is_named_with_the_closest_param(form: dict[str, Any]) -> None:
    defaults = {name: param.value for name, param in form.items()}

    assert conf_problems({"num_boost_rounds": 1}, defaults) == [
        "unknown trigger parameter 'num_boost_rounds': did you mean 'num_boost_round'? "
        "(a conf may only set the DAG's Params)"
    ]
    (far,) = conf_problems({"colour": "red"}, defaults)
    assert far.startswith("unknown trigger parameter 'colour': use one of ['learning_rate'")
    assert conf_problems({"num_boost_round": 5, "promotion_mode": "dry_run"}, defaults) == []


def test_conflicts_control_characters_and_bad_values_are_named_once_each(form: dict[str, Any]) -> None:
    defaults = {name: param.value for name, param in form.items()}

    assert conf_problems({"promotion_mode": "force"}, defaults) == [
        "promotion_mode 'force' needs a reason: set 'reason' (it is recorded with the forced promotion)"
    ]
    assert conf_problems({"promotion_mode": "force", "reason": "hotfix"}, defaults) == []
    assert conf_problems({"reason": "a\x00b"}, defaults) == [
        "reason holds a control character (U+0000 at position 1); remove it"
    ]
    # The typed parse the tasks make names a value out of its template field's bounds, at run creation too.
    assert conf_problems({"num_leaves": 1}, defaults) == [
        "num_leaves=1: Input should be greater than or equal to 2 (the bound of the template's num_leaves)"
    ]


def test_a_float_for_an_integer_param_passes_airflows_schema_check_but_not_the_conf_check(
    form: dict[str, Any],
) -> None:
    # Draft 7 counts 60.0 as an integer: Airflow creates the run, and its first task used to refuse it.
    copy.deepcopy(form["num_boost_round"]).resolve(60.0)  # a copy: resolve() keeps the value as the default
    defaults = {name: param.value for name, param in form.items()}

    assert conf_problems({"num_boost_round": 60.0}, defaults) == ["num_boost_round: expected an integer, got 60.0"]
    assert conf_problems({"num_boost_round": 60}, defaults) == []


@pytest.mark.parametrize("day", ["9999-12-31", "1969-12-31", "2201-01-01"])
def test_a_window_date_outside_its_bounds_is_refused_by_the_form_and_the_overrides(
    form: dict[str, Any], day: str
) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError, match="does not match"):
        copy.deepcopy(form["window_end"]).resolve(day)
    with pytest.raises(OverrideError, match=f"window_start {day} is outside 1970-01-01..2200-12-31"):
        RunOverrides.from_params({"window_start": day})
    defaults = {name: param.value for name, param in form.items()}
    assert conf_problems({"window_end": day}, defaults) == [
        f"window_end {day} is outside 1970-01-01..2200-12-31, the days a window may name; fix the year"
    ]
    copy.deepcopy(form["window_end"]).resolve("2200-12-31")  # the last day a window may name is taken
    assert "1970-01-01 to 2200-12-31" in form["window_end"].description


def test_a_window_longer_than_100_years_is_refused() -> None:
    with pytest.raises(OverrideError, match=r"the window 1970-01-01..2200-12-31 spans 84,371 days, at most 36,600"):
        RunOverrides.from_params({"window_start": "1970-01-01", "window_end": "2200-12-31"})
    assert RunOverrides.from_params({"window_start": "2000-01-01", "window_end": "2100-03-14"}).window_end


def test_the_reason_param_refuses_control_characters_but_not_tabs_or_newlines(form: dict[str, Any]) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    form["reason"].resolve("line one\nline two\twith a tab\r\n")
    for bad in ("nul \x00 byte", "bell \x07", "escape \x1b[31m", "delete \x7f"):
        with pytest.raises(ParamValidationError, match="does not match"):
            form["reason"].resolve(bad)
