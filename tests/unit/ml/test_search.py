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
    assert logged.metrics["search_trials"] == 4


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
