"""The settings objects the factory builds once per task: JSON round trips, strict keys, one shared split."""

from __future__ import annotations

import dataclasses
import json

import pytest

from airflow_ml.factory.tasks import TaskSettings, task_settings
from airflow_ml.ml.steps.step_settings import GateSettings, SplitSettings, TrainingSettings
from airflow_ml.templates import load_city_configs
from tests.support import REPO


@pytest.fixture(scope="module")
def tasks() -> TaskSettings:
    configs, _ = load_city_configs(REPO / "dag_templates")
    config = next(c for c in configs if c.city == "lisbon")
    return task_settings(config, expectations_dir=REPO / "expectations")


def test_every_tasks_settings_survive_a_json_round_trip(tasks: TaskSettings) -> None:
    for field in dataclasses.fields(tasks):
        settings = getattr(tasks, field.name)
        again = type(settings).from_dict(json.loads(json.dumps(settings.to_dict())))

        assert again.to_dict() == settings.to_dict(), field.name


def test_training_the_gate_and_the_health_check_share_one_split(tasks: TaskSettings) -> None:
    split = tasks.training.split

    assert isinstance(split, SplitSettings)
    assert tasks.gate.split is split
    assert tasks.health.split is split
    assert (
        GateSettings.from_dict(tasks.gate.to_dict()).split == TrainingSettings.from_dict(tasks.training.to_dict()).split
    )


def test_an_unknown_setting_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"unknown SplitSettings key\(s\) \['holdout'\]"):
        SplitSettings.from_dict({"time_column": "t", "holdout": 0.2})


def test_a_runs_overrides_replace_only_what_they_set(tasks: TaskSettings) -> None:
    overridden = tasks.training.with_overrides(num_boost_round=7, lgbm_params={"num_leaves": 12}, search_trials=0)

    assert overridden.spec.num_boost_round == 7
    assert overridden.spec.params == {**tasks.training.spec.params, "num_leaves": 12}
    assert overridden.search["trials"] == 0
    assert tasks.training.with_overrides().to_dict() == tasks.training.to_dict()


def test_the_monitor_settings_survive_a_json_round_trip_with_their_supervisor() -> None:
    from airflow_ml.ml.steps.step_settings import MonitorSettings, SupervisorSettings

    settings = MonitorSettings(
        template="ride_duration",
        city="lisbon",
        model_name="ride_duration.lisbon",
        metric="rmse",
        target="duration_min",
        predictions_root="{data_root}",
        labels_source="{data_root}/labels/{city}",
        key_columns=["trip_id"],
        supervisor=SupervisorSettings(mode="auto", min_labels=50),
    )

    again = MonitorSettings.from_dict(json.loads(json.dumps(settings.to_dict())))

    assert again == settings
    assert again.supervisor == SupervisorSettings(mode="auto", min_labels=50)


def test_the_shadow_comparisons_settings_survive_a_json_round_trip() -> None:
    import json

    from airflow_ml.ml.steps.step_settings import ShadowSettings

    settings = ShadowSettings(min_labels=200, slices=({"column": "pickup_zone", "bins": None},), seed=3)

    assert ShadowSettings.from_dict(json.loads(json.dumps(settings.to_dict()))).to_dict() == settings.to_dict()
    assert ShadowSettings().to_dict()["min_improvement"] == 0.02
