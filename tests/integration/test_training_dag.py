"""End to end (dag.test(), real LightGBM, Optuna and MLflow): warm start and a search asked for in the
trigger form, through the factory, the operator and the pipeline."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.worlds import city_world

pytestmark = pytest.mark.integration
CITY = "berlin"


def test_warm_start_and_a_trigger_form_search(tmp_path: Path, airflow_db: Path, dags_dir: Path) -> None:
    extra = "training:\n  warm_start: true\n  num_boost_round: 30\n"
    with city_world(tmp_path, dags_dir, CITY, extra=extra) as world:
        client = world["client"]
        first = world["build"]().test()
        second = world["build"]().test(run_conf={"search_trials": 2, "search_timeout_minutes": 5})

        assert str(first.state) == str(second.state) == "success"
        experiment = client.get_experiment_by_name(f"ride_duration.{CITY}")
        runs = client.search_runs([experiment.experiment_id], "tags.`airflow.task_id` = 'train'")
        by_run = {run.data.tags["airflow.run_id"]: run for run in runs}
        first_train, second_train = by_run[first.run_id], by_run[second.run_id]
        assert first_train.data.tags["airflow_ml.warm_start"] == "skipped: no champion yet"
        assert second_train.data.tags["airflow_ml.warm_start"] in {"cold", "warm"}
        trials = client.search_runs(
            [experiment.experiment_id], f"tags.`mlflow.parentRunId` = '{second_train.info.run_id}'"
        )
        assert len(trials) == 2
        assert second_train.data.params["search_trials"] == "2"  # a count: a param
        assert "best_num_leaves" in second_train.data.params
        assert "search_trials" not in first_train.data.params  # no search configured, none asked for
