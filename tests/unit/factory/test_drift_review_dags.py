"""The drift review DAG per template (factory/drift_review_dags.py): which cities, the settings, parsing context."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_ml.factory.drift_review_dags import DRIFT_REVIEW_SCHEDULE, drift_review_dag_id, register_drift_review_dags
from airflow_ml.ml.steps.step_settings import DriftReviewSettings
from airflow_ml.operators.drift_review_operator import DriftReviewOperator
from tests.support.city_files import templates_folder, write_city


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """Three cities: porto stricter, lisbon with the defaults, oslo with calibration off."""
    root = templates_folder(tmp_path)
    write_city(root, "lisbon", "city: lisbon\ntemplate: ride_duration\n")
    calibration = "drift:\n  calibration: {q: 0.01, min_flagged: 3, max_age_days: 60}\n"
    write_city(root, "porto", "city: porto\ntemplate: ride_duration\n" + calibration)
    write_city(root, "oslo", "city: oslo\ntemplate: ride_duration\ndrift:\n  calibration: {enabled: false}\n")
    return root


def test_one_review_dag_per_template_over_its_calibrated_cities_with_the_strictest_q(root: Path) -> None:
    namespace: dict[str, object] = {}

    dag = register_drift_review_dags(namespace, templates_root=root)["ride_duration.drift_review"]

    task = dag.get_task("review")
    assert isinstance(task, DriftReviewOperator)
    settings = DriftReviewSettings.from_dict(task.settings)
    assert settings.cities == {"lisbon": "ride_duration.lisbon", "porto": "ride_duration.porto"}
    assert (settings.q, settings.min_flagged, settings.max_age_days) == (0.01, 2, 60)
    assert dag.schedule == DRIFT_REVIEW_SCHEDULE
    assert namespace["dag_ride_duration_drift_review"] is dag


def test_a_task_process_of_another_dag_builds_no_review_dag(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", "ride_duration.lisbon")
    assert register_drift_review_dags({}, templates_root=root) == {}

    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", drift_review_dag_id("ride_duration"))
    assert list(register_drift_review_dags({}, templates_root=root)) == ["ride_duration.drift_review"]
