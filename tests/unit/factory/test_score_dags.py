"""The scoring DAGs (factory/score_dags.py): which cities get one, tasks, schedule, shards and parsing context."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from airflow_ml.factory import Shard, city_problems, register_score_dags
from airflow_ml.factory.score_dags import scoring_settings
from airflow_ml.ml.steps.step_settings import ScoringSettings
from airflow_ml.templates import load_city_file
from tests.support import REPO
from tests.support.city_files import write_city
from tests.support.scoring import SCORING_YAML
from tests.support.task_runs import templated_yaml


@pytest.fixture
def scoring_root(root: Path) -> Path:
    """The ride_duration template with a scoring section; berlin scores, lisbon opts out, sao_paulo shadows nothing."""
    template = root / "templates" / "ride_duration.yaml"
    extra = SCORING_YAML + "fallback: {parent: global}\n"
    template.write_text(template.read_text(encoding="utf-8") + extra, encoding="utf-8")
    write_city(root, "berlin", "city: berlin\ntemplate: ride_duration\n")
    write_city(root, "lisbon", "city: lisbon\ntemplate: ride_duration\nscoring:\n  enabled: false\n")
    write_city(
        root,
        "sao_paulo",
        "city: sao_paulo\ntemplate: ride_duration\nscoring:\n  shadow: false\n"
        "  key_columns: [pickup_zone, pickup_at]\n  store: {conn_id: predictions_db}\n",
    )
    return root


def test_the_repositorys_cities_each_get_a_scoring_dag_from_the_templates_scoring() -> None:
    cities = sorted(path.stem for path in (REPO / "dag_templates" / "cities").glob("*.yaml"))

    dags = register_score_dags({}, templates_root=REPO / "dag_templates")

    assert sorted(dags) == [f"ride_duration.{city}.score" for city in cities]
    config = load_city_file(REPO / "dag_templates" / "cities" / "lisbon.yaml", REPO / "dag_templates" / "templates")
    settings = scoring_settings(config)
    # The demo's trips to score (written by data/demo_scoring.py), keyed by trip so that their outcomes join.
    assert (settings.source, settings.key_columns, settings.shadow) == (
        "{data_root}/raw/to_score/{city}",
        ["trip_id"],
        True,
    )


def test_only_cities_with_scoring_enabled_get_a_scoring_dag(scoring_root: Path) -> None:
    namespace: dict[str, object] = {}
    dags = register_score_dags(namespace, templates_root=scoring_root)

    assert sorted(dags) == ["ride_duration.berlin.score", "ride_duration.sao_paulo.score"]
    assert namespace["dag_ride_duration_berlin_score"] is dags["ride_duration.berlin.score"]
    berlin = dags["ride_duration.berlin.score"]
    assert [t.task_id for t in berlin.topological_sort()] == ["resolve", "score"]
    assert {"airflow-ml", "scoring", "city:berlin"} <= set(berlin.tags)
    assert "airflow-ml:retrain" not in berlin.tags  # the fleet view lists retraining DAGs only
    assert berlin.default_args["owner"] == "ml-platform"
    assert berlin.catchup is False
    assert "predictions/ride_duration/berlin/" in (berlin.doc_md or "")
    assert all(templated_yaml(task) == {} for task in berlin.tasks)  # nothing from YAML reaches Jinja


def test_the_settings_carry_every_scoring_key_and_the_fallback_parent(scoring_root: Path) -> None:
    config = load_city_file(scoring_root / "cities" / "sao_paulo.yaml", scoring_root / "templates")

    settings = scoring_settings(config)

    assert settings == ScoringSettings.from_dict(settings.to_dict())
    assert (settings.model_name, settings.parent_model) == ("ride_duration.sao_paulo", "ride_duration.global")
    assert (settings.shadow, settings.key_columns, settings.keep_columns) == (
        False,
        ["pickup_zone", "pickup_at"],
        ["pickup_zone"],
    )
    assert (settings.store_conn_id, settings.store_table) == ("predictions_db", "airflow_ml_predictions")
    assert list(settings.features) == list(config.dataset.features)
    assert settings.time_column == config.dataset.time_column == "pickup_at"  # a CSV source reads it as date-times
    assert settings.output_root("/srv/data/") == "/srv/data"


def test_the_schedule_is_the_clock_or_the_citys_data_asset(scoring_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk import Asset, AssetOrTimeSchedule

    write_city(scoring_root, "berlin", "city: berlin\ntemplate: ride_duration\nscoring: {on_new_data: true}\n")
    write_city(
        scoring_root,
        "sao_paulo",
        "city: sao_paulo\ntemplate: ride_duration\nscoring: {on_new_data: true, schedule: null}\n",
    )
    monkeypatch.setenv("AIRFLOW_ML_DATA_ROOT", "/srv/data")

    dags = register_score_dags({}, templates_root=scoring_root)

    berlin = dags["ride_duration.berlin.score"]
    assert isinstance(berlin.timetable, AssetOrTimeSchedule)
    assert "expression='0 0 * * *'" in repr(berlin.timetable.timetable)  # @daily, as the cron it stands for
    (asset,) = dags["ride_duration.sao_paulo.score"].timetable.asset_condition.objects
    assert isinstance(asset, Asset)
    assert asset.uri == "file:///srv/data/raw/trips/sao_paulo"
    assert asset.name == "ride_duration.sao_paulo.data"  # the very Asset the retraining DAG listens to


def test_on_new_data_without_a_data_root_skips_the_dag_and_is_reported(
    scoring_root: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    write_city(scoring_root, "berlin", "city: berlin\ntemplate: ride_duration\nscoring: {on_new_data: true}\n")
    monkeypatch.delenv("AIRFLOW_ML_DATA_ROOT", raising=False)

    with caplog.at_level(logging.ERROR, logger="airflow_ml.factory.score_dags"):
        dags = register_score_dags({}, templates_root=scoring_root)

    assert "ride_duration.berlin.score" not in dags
    assert any("scoring.on_new_data needs AIRFLOW_ML_DATA_ROOT" in r.getMessage() for r in caplog.records)
    assert any("scoring.on_new_data" in str(error) for error in city_problems(scoring_root))


def test_shards_split_the_scoring_dags_as_they_split_the_cities(scoring_root: Path) -> None:
    shards = [set(register_score_dags({}, templates_root=scoring_root, shard=Shard(i, 2))) for i in (0, 1)]

    assert not shards[0] & shards[1]
    assert shards[0] | shards[1] == {"ride_duration.berlin.score", "ride_duration.sao_paulo.score"}
    for index, built in enumerate(shards):
        assert all(Shard(index, 2).holds(dag_id.split(".")[1]) for dag_id in built)


def test_a_task_process_builds_only_its_own_scoring_dag(
    scoring_root: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    write_city(scoring_root, "broken", "city: broken\ntemplate: ride_duration\nnot_a_field: 1\n")
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", "ride_duration.berlin.score")

    with caplog.at_level(logging.ERROR, logger="airflow_ml.factory.score_dags"):
        built = register_score_dags({}, templates_root=scoring_root)

    assert list(built) == ["ride_duration.berlin.score"]
    assert caplog.records == [], "a task process must not read other cities' files"
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", "ride_duration.berlin")  # the retraining DAG's task
    assert register_score_dags({}, templates_root=scoring_root) == {}
