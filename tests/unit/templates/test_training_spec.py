"""The training options of a template (class weights, search, warm start), the trigger form's search
Params and how the train operator resolves them."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from airflow_ml.exceptions import ConfigError
from airflow_ml.factory.params import SCHEMA_DIALECT, trigger_params
from airflow_ml.factory.tasks import task_settings
from airflow_ml.ml.steps.step_settings import SplitSettings, TrainingSettings
from airflow_ml.ml.steps.train_step import search_settings
from airflow_ml.ml.train_spec import TrainSpec
from airflow_ml.operators.overrides import OverrideError, RunOverrides
from airflow_ml.operators.train_operator import with_overrides
from airflow_ml.templates import load_city_file
from tests.support import REPO

TEMPLATE = REPO / "dag_templates" / "templates" / "ride_duration.yaml"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "templates").mkdir()
    (tmp_path / "cities").mkdir()
    shutil.copy(TEMPLATE, tmp_path / "templates" / "ride_duration.yaml")
    return tmp_path


def load(root: Path, training: str) -> object:
    path = root / "cities" / "oslo.yaml"
    path.write_text(f"city: oslo\ntemplate: ride_duration\ntraining:\n{training}", encoding="utf-8")
    return load_city_file(path, root / "templates")


def error_text(root: Path, training: str) -> str:
    with pytest.raises(ConfigError) as info:
        load(root, training)
    text = str(info.value)
    assert str(root / "cities" / "oslo.yaml") in text
    return text


SEARCH = """  search:
    trials: 7
    timeout_minutes: 2
    params:
      learning_rate: [0.01, 0.3, log]
      num_leaves: [8, 256]
      min_data_in_leaf: [5, 200]
  warm_start: true
"""


def test_search_and_warm_start_load(root: Path) -> None:
    config = load(root, SEARCH)

    search = config.training.search  # type: ignore[attr-defined]
    assert (search.trials, search.timeout_minutes) == (7, 2)
    assert search.params["learning_rate"] == [0.01, 0.3, "log"]
    assert config.training.warm_start is True  # type: ignore[attr-defined]
    assert config.training.class_weight == "none"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("ranges", "fragment"),
    [
        ("num_leaves: [1, 300]", "num_leaves: bound 1 is outside the parameter's valid range"),
        ("learning_rate: [0.3, 0.1]", "learning_rate: low 0.3 must be below high 0.1"),
        ("num_leaves: [8.5, 20]", "num_leaves is an integer parameter"),
        ("learning_rate: [0, 0.1, log]", "a log range needs a positive low bound"),
        ("learning_rate: [0.01, 0.1, linear]", "the third item may only be 'log'"),
        ("leaves: [8, 20]", "'leaves' is not a LightGBM parameter a template may set"),
    ],
)
def test_bad_search_ranges_are_named(root: Path, ranges: str, fragment: str) -> None:
    text = error_text(root, f"  search:\n    params:\n      {ranges}\n")

    assert "training.search.params" in text
    assert fragment in text


def test_search_trials_are_bounded(root: Path) -> None:
    assert "training.search.trials" in error_text(root, "  search:\n    trials: 5000\n")


def test_class_weight_needs_a_binary_task(root: Path) -> None:
    text = error_text(root, "  class_weight: balanced\n")

    assert "class_weight 'balanced' applies to task 'binary' only, not 'regression'" in text


def test_a_binary_template_with_balanced_weights_loads(root: Path) -> None:
    data = yaml.safe_load(TEMPLATE.read_text(encoding="utf-8"))
    data.update(template="late_pickup", task="binary", metric={"name": "auc"})
    data["dataset"]["target"] = "late"
    data.pop("drift", None)
    data.pop("gate", None)
    (root / "templates" / "late_pickup.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    path = root / "cities" / "oslo.yaml"
    path.write_text("city: oslo\ntemplate: late_pickup\ntraining:\n  class_weight: balanced\n", encoding="utf-8")

    config = load_city_file(path, root / "templates")

    assert (config.task, config.training.class_weight) == ("binary", "balanced")


def test_trigger_form_has_the_two_search_params_with_the_dialect(root: Path) -> None:
    params = trigger_params(load(root, SEARCH))  # type: ignore[arg-type]

    for name in ("search_trials", "search_timeout_minutes"):
        assert params[name].value is None
        assert params[name].schema["$schema"] == SCHEMA_DIALECT
    assert "configured 7" in params["search_trials"].description
    assert "0 to 1,000" in params["search_trials"].description
    assert "at most 1,440" in params["search_timeout_minutes"].description


def searched(search: dict | None, run: RunOverrides) -> Any:
    """The search the train task runs with ``search`` configured (as the factory hands it) and a run's overrides."""
    integers = ["min_data_in_leaf", "num_leaves"]  # as the factory marks LightGBMParams' integer fields
    spec = TrainSpec(features=["x"], categorical=[], target="y")
    settings = TrainingSettings(
        "e", spec, SplitSettings("t"), search={**search, "integers": integers} if search else {}
    )
    return search_settings(with_overrides(settings.to_dict(), run))


def test_the_factory_marks_the_integer_parameters_for_the_search(root: Path) -> None:
    settings = task_settings(load(root, SEARCH), expectations_dir=root)  # type: ignore[arg-type]

    assert {"num_leaves", "min_data_in_leaf"} <= set(settings.training.search["integers"])
    assert "learning_rate" not in settings.training.search["integers"]


CONFIGURED = {"trials": 7, "timeout_minutes": 2, "params": {"num_leaves": [8, 256], "learning_rate": [0.01, 0.3]}}


def overrides(**params: object) -> RunOverrides:
    return RunOverrides.from_params(params)


def test_the_form_overrides_the_configured_search() -> None:
    kept = searched(CONFIGURED, overrides(search_trials=None, search_timeout_minutes=None))
    overridden = searched(CONFIGURED, overrides(search_trials=3, search_timeout_minutes=0.5))

    assert (kept.trials, kept.timeout_seconds) == (7, 120)
    assert (overridden.trials, overridden.timeout_seconds) == (3, 30)
    assert overridden.ranges["num_leaves"].integer
    assert not overridden.ranges["learning_rate"].integer
    assert searched(CONFIGURED, overrides(search_trials=0)) is None  # 0 turns it off
    assert searched(None, overrides()) is None


def test_bad_form_values_name_the_field() -> None:
    with pytest.raises(OverrideError, match=r"search_trials: expected an integer, got 2\.5"):
        overrides(search_trials=2.5)
    with pytest.raises(OverrideError, match="search_trials: expected an integer, got 'many'"):
        overrides(search_trials="many")
    with pytest.raises(ValueError, match="no search ranges are configured"):
        searched({"trials": 0, "timeout_minutes": 1, "params": {}}, overrides(search_trials=4))
