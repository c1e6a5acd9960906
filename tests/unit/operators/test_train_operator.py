"""TrainModelOperator: its settings, its template fields, and ``execute`` on a real MLflow store."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_ml.ml.steps.step_settings import TrainingSettings
from airflow_ml.operators.overrides import RunOverrides
from airflow_ml.operators.train_operator import TrainModelOperator, with_overrides
from tests.support.task_runs import OperatorWorld, templated_yaml


def test_init_takes_the_factorys_training_settings_as_one_dict(world: OperatorWorld) -> None:
    task = world.task("train")

    assert isinstance(task, TrainModelOperator)
    settings = TrainingSettings.from_dict(task.settings)
    assert settings.experiment == "ride_duration.lisbon"
    assert settings.spec.num_boost_round == 8
    assert (task.mlflow_conn_id, task.aws_conn_id) == ("mlflow_default", "aws_default")


def test_template_fields_hold_only_the_snapshot_xcom(world: OperatorWorld) -> None:
    assert TrainModelOperator.template_fields == ("snapshot",)
    assert templated_yaml(world.task("train")) == {}


def test_a_bad_settings_dict_is_refused_naming_the_key(world: OperatorWorld, snapshot: dict[str, Any]) -> None:
    task = TrainModelOperator(task_id="train", snapshot=snapshot, settings={"experimnt": "x"})

    with pytest.raises(ValueError, match=r"unknown TrainingSettings key\(s\) \['experimnt'\]"):
        task.execute(world.context("train"))  # type: ignore[arg-type]


def test_the_runs_overrides_reach_the_settings_typed(world: OperatorWorld) -> None:
    overrides = RunOverrides.from_params({**world.context("train")["params"], "num_boost_round": 3})

    assert with_overrides(world.task("train").settings, overrides).spec.num_boost_round == 3


def test_execute_trains_logs_the_run_and_links_it(world: OperatorWorld, snapshot: dict[str, Any]) -> None:
    result, ti = world.run("train", snapshot=snapshot)

    run = world.client.get_run(result["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.tags["airflow.task_id"] == "train"
    assert result["metrics"]["best_iteration"] <= 8
    assert set(result) >= {"run_id", "experiment_id", "model_uri", "metrics", "warm_start", "charts"}
    assert list(ti.pushed) == ["_link_MlflowRunLink"]


def test_training_and_the_gate_share_one_split(world: OperatorWorld) -> None:
    # The split is the gate's too (the same holdout rows).
    built = TrainingSettings.from_dict(world.task("train").settings)
    assert built.split.to_dict() == world.task("gate").settings["split"]
