"""The hyperparameter search (airflow_ml.ml.search): nested trials logged in MLflow, the best params, deterministic."""

from __future__ import annotations

import pandas as pd
from mlflow import MlflowClient

from airflow_ml.ml.search import PARENT_RUN_TAG, search_params
from airflow_ml.ml.train import time_split
from tests.support.training_data import regression, search_settings


def test_search_logs_nested_trials_and_the_best_params(client: MlflowClient, trips: pd.DataFrame) -> None:
    splits = time_split(trips, "pickup_at", 0.15, 0.15)
    experiment_id = client.create_experiment("search")
    parent = client.create_run(experiment_id).info.run_id

    result = search_params(
        client,
        experiment_id=experiment_id,
        parent_run_id=parent,
        splits=splits,
        spec=regression(),
        settings=search_settings(),
    )

    trials = client.search_runs([experiment_id], f"tags.`{PARENT_RUN_TAG}` = '{parent}'")
    assert result.trials == len(trials) == 4
    scores = {run.data.metrics["validation_rmse"]: run.data.params for run in trials}
    assert "holdout_rmse" not in trials[0].data.metrics  # trials never see the holdout
    assert result.best_value == min(scores)
    best = scores[result.best_value]
    assert isinstance(result.best_params["num_leaves"], int)
    assert best == {k: str(v) for k, v in result.best_params.items()}
    logged = client.get_run(parent).data
    assert logged.params["best_num_leaves"] == str(result.best_params["num_leaves"])
    assert logged.params["search_trials"] == "4"  # a count: a param, never a one-point metric
    assert "search_trials" not in logged.metrics


def test_search_is_deterministic(client: MlflowClient, trips: pd.DataFrame) -> None:
    splits = time_split(trips, "pickup_at", 0.15, 0.15)
    experiment_id = client.create_experiment("search")
    found = []
    for _ in range(2):
        parent = client.create_run(experiment_id).info.run_id
        found.append(
            search_params(
                client,
                experiment_id=experiment_id,
                parent_run_id=parent,
                splits=splits,
                spec=regression(),
                settings=search_settings(3),
            ).best_params
        )

    assert found[0] == found[1]


def test_integer_parameters_are_drawn_as_integers_without_the_factory() -> None:
    from airflow_ml.factory.tasks import _INTEGER_PARAMS
    from airflow_ml.ml.search import LIGHTGBM_INTEGER_PARAMS
    from airflow_ml.ml.steps.step_settings import SplitSettings, TrainingSettings
    from airflow_ml.ml.steps.train_step import search_settings as settings_of_search
    from airflow_ml.ml.train_spec import TrainSpec

    # Every integer parameter the templates accept is one that LightGBM takes as an integer.
    assert set(_INTEGER_PARAMS) <= LIGHTGBM_INTEGER_PARAMS
    # A hand-written DAG's search names no integers: num_leaves is still drawn as a whole number.
    spec = TrainSpec(features=["x"], categorical=[], target="y", task="regression", metric="rmse")
    training = TrainingSettings(
        experiment="hand.written",
        spec=spec,
        split=SplitSettings(time_column="t", validation_fraction=0.2, holdout_fraction=0.2),
        search={"trials": 2, "params": {"num_leaves": [8, 64], "learning_rate": [0.01, 0.3, "log"]}},
    )
    search = settings_of_search(training)
    assert search is not None
    assert search.ranges["num_leaves"].integer is True
    assert search.ranges["learning_rate"].integer is False
