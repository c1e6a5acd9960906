"""ScoreOperator: its settings, its template fields, and ``execute`` on a real MLflow store."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowSkipException

from airflow_ml.data.prediction_log import read_predictions
from airflow_ml.ml import kill_switch
from airflow_ml.ml.steps.step_settings import ScoringSettings
from airflow_ml.operators.score_operator import ScoreOperator, scoring_time
from tests.support.scoring import DAY, LISBON_MODEL, scoring_context, scoring_operator_world
from tests.support.task_runs import templated_yaml


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with scoring_operator_world(tmp_path_factory.mktemp("score_operator")) as built:
        yield built


def test_init_takes_the_factorys_scoring_settings_as_one_dict(world: dict[str, Any]) -> None:
    resolve, score = world["dag"].get_task("resolve"), world["dag"].get_task("score")

    assert isinstance(score, ScoreOperator)
    settings = ScoringSettings.from_dict(score.settings)
    assert (settings.model_name, settings.source, settings.keep_columns) == (
        LISBON_MODEL,
        "{data_root}/raw/trips/{city}",
        ["pickup_zone"],
    )
    assert resolve.settings == score.settings
    assert score.upstream_task_ids == {"resolve"}


def test_template_fields_hold_only_the_upstream_xcom(world: dict[str, Any]) -> None:
    assert ScoreOperator.template_fields == ("resolved",)
    assert templated_yaml(world["dag"].get_task("score")) == {}


def test_a_bad_settings_dict_is_refused_naming_the_key(world: dict[str, Any]) -> None:
    task = ScoreOperator(task_id="score", settings={"sourc": "x"}, resolved={"status": "serve"})

    with pytest.raises(ValueError, match=r"unknown ScoringSettings key\(s\) \['sourc'\]"):
        task.execute(scoring_context(world["dag"], "score"))  # type: ignore[arg-type]


def test_execute_scores_the_day_with_the_resolved_version(world: dict[str, Any]) -> None:
    score = _score_task(world)

    payload = score.execute(scoring_context(world["dag"], "score"))  # type: ignore[arg-type]

    assert (payload["status"], payload["day"], payload["model_version"]) == ("scored", DAY.isoformat(), "1")
    log = read_predictions(str(world["data_root"]), "ride_duration", "lisbon", DAY, DAY)
    assert len(log) == payload["row_count"] > 0
    assert set(log["model_version"]) == {"1"}
    assert payload["stored_rows"] is None  # no scoring.store


def test_without_a_resolve_task_it_resolves_itself_with_the_same_skips(world: dict[str, Any]) -> None:
    score = ScoreOperator(task_id="score", settings=world["dag"].get_task("score").settings)
    kill_switch.disable(world["client"], LISBON_MODEL, reason="wrong currency upstream", by="oncall")
    try:
        with pytest.raises(AirflowSkipException, match="kill switch"):
            score.execute(scoring_context(world["dag"], "score"))  # type: ignore[arg-type]
    finally:
        kill_switch.enable(world["client"], LISBON_MODEL, by="oncall")


def test_a_run_without_a_logical_date_scores_the_day_it_runs_after(world: dict[str, Any]) -> None:
    context = scoring_context(world["dag"], "score")
    context["logical_date"] = None
    context["dag_run"].run_after = dt.datetime(2026, 1, 13, 2, 30, tzinfo=dt.UTC)

    assert scoring_time(context) == dt.datetime(2026, 1, 13, 2, 30, tzinfo=dt.UTC)  # type: ignore[arg-type]


def _data_events(*extras: dict[str, Any], partition_keys: tuple[str | None, ...] = ()) -> Any:
    """Airflow's own accessor of a run's triggering Asset events, holding events of the city's data Asset."""
    from airflow.sdk.execution_time.comms import AssetEventDagRunReferenceResult
    from airflow.sdk.execution_time.context import TriggeringAssetEventsAccessor

    keys = partition_keys or (None,) * len(extras)
    events = [
        AssetEventDagRunReferenceResult(
            asset={"name": "ride_duration.lisbon.data", "uri": "file:///data/raw/trips/lisbon", "extra": {}},
            extra=extra,
            source_task_id="land",
            source_dag_id="ingest_trips",
            source_run_id=f"run-{index}",
            source_map_index=-1,
            source_aliases=[],
            timestamp=dt.datetime(2026, 1, 20, 3, index, tzinfo=dt.UTC),
            partition_key=key,
        )
        for index, (extra, key) in enumerate(zip(extras, keys, strict=True))
    ]
    return TriggeringAssetEventsAccessor.build(events)


def _score_task(world: dict[str, Any]) -> ScoreOperator:
    """The score task with the resolve task's XCom of a run."""
    dag = world["dag"]
    resolved = dag.get_task("resolve").execute(scoring_context(dag, "resolve"))
    return ScoreOperator(task_id="score", settings=dag.get_task("score").settings, resolved=resolved)


def _asset_triggered(world: dict[str, Any], events: Any) -> dict[str, Any]:
    context = scoring_context(world["dag"], "score")
    context["logical_date"] = None  # an Asset-triggered run has none
    context["dag_run"].run_after = dt.datetime(2026, 1, 20, 3, 5, tzinfo=dt.UTC)  # no partition that day
    context["triggering_asset_events"] = events
    return context


def test_an_asset_triggered_run_scores_the_days_its_events_name(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    from airflow_ml.factory.assets import data_event_extra

    score = _score_task(world)
    later = DAY + dt.timedelta(days=1)
    events = _data_events(data_event_extra(DAY), {"note": "no day"}, partition_keys=(None, f"date={later}"))

    payload = score.execute(_asset_triggered(world, events))  # type: ignore[arg-type]
    logged = capsys.readouterr().out

    assert payload["day"] == later.isoformat()  # the last of the two days named
    assert "scored 2 days" in payload["reason"]
    for day in (DAY, later):
        assert len(read_predictions(str(world["data_root"]), "ride_duration", "lisbon", day, day)) > 0
    assert f"scoring {DAY}, {later}: 2 event(s) of the data Asset name the day(s) that landed" in logged


def test_an_asset_triggered_run_whose_events_name_no_day_scores_the_newest_partition(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    from airflow_ml.scoring.score_step import newest_day

    score = _score_task(world)
    newest = newest_day(score.scoring_settings, data_root=str(world["data_root"]))

    payload = score.execute(_asset_triggered(world, _data_events({"day": "2026-02-30"})))  # type: ignore[arg-type]
    logged = capsys.readouterr().out

    assert payload["day"] == newest.isoformat() != "2026-01-20"
    assert f"scoring {newest}: 1 event(s) of the data Asset name no day" in logged
    assert "ignored values that are no day: [\"'2026-02-30'\"]" in logged
    assert "scoring the source's newest partition" in logged


def test_the_days_of_an_event_come_from_its_extra_or_its_partition_key() -> None:
    from airflow_ml.operators.score_operator import data_event_extra, event_days, scoring_days

    assert data_event_extra(DAY) == {"day": DAY.isoformat()}
    assert data_event_extra(DAY, DAY, dt.date(2026, 1, 11)) == {"days": ["2026-01-11", DAY.isoformat()]}
    assert event_days({"days": ["2026-01-11", "soon", 3]}) == ([dt.date(2026, 1, 11)], ["'soon'", "3"])
    assert event_days({}, "2026-01-10") == ([dt.date(2026, 1, 10)], [])
    chosen = scoring_days({"triggering_asset_events": _data_events({"days": ["2026-01-12", "2026-01-11"]})})  # type: ignore[arg-type]
    assert chosen.days == (dt.date(2026, 1, 11), DAY)
    clock = scoring_days({"logical_date": dt.datetime(2026, 1, 9, tzinfo=dt.UTC), "triggering_asset_events": {}})  # type: ignore[arg-type]
    assert (clock.days, clock.why) == ((dt.date(2026, 1, 9),), "the run's logical date, 2026-01-09")
