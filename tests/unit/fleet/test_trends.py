"""Each city's trend is read from a real MLflow registry in one search per template, and drawn as a sparkline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from airflow_ml.fleet.sparkline import render_sparkline, sparkline
from airflow_ml.fleet.trends import MAX_POINTS, Trend, TrendPoint, read_trends, trend_of
from tests.support.mlflow_stores import CountingClient, register_version, sqlite_registry


@pytest.fixture
def client(tmp_path: Path) -> MlflowClient:
    return sqlite_registry(tmp_path)  # type: ignore[no-any-return]


def _version(client: MlflowClient, name: str, tmp_path: Path, **tags: Any) -> str:
    """A version with ``gate.*``/``monitor.*`` tags (keys with ``__`` for the dot), written as the tasks write them."""
    return register_version(client, name, tmp_path, {key.replace("__", "."): value for key, value in tags.items()})


def test_a_trend_follows_the_versions_with_live_scores_in_one_search_per_template(
    client: MlflowClient, tmp_path: Path
) -> None:
    for score in (7.5, 7.1, 6.8):
        _version(client, "tpl.a", tmp_path, gate__metric="rmse", gate__challenger_score=score, gate__decision="kept")
    # The monitor measured version 2 while it served: its live error stands beside its holdout score.
    client.set_model_version_tag("tpl.a", "2", "monitor.live_rmse", "7.9")
    _version(client, "tpl.a", tmp_path)  # the newest, still undecided: no point yet
    _version(client, "tpl.b", tmp_path, gate__metric="rmse", gate__challenger_score=3.0)
    _version(client, "other.c", tmp_path, gate__metric="mae", gate__challenger_score=1.0)
    _version(client, "tpl_x.a", tmp_path, gate__metric="rmse", gate__challenger_score=9.0)  # a LIKE match not wanted
    counting = CountingClient(client)

    trends = read_trends(counting, ["tpl.a", "tpl.b", "tpl.none", "other.c"])  # type: ignore[arg-type]

    # One per template however many cities, and one for the model none of whose versions it met (tpl.none).
    assert counting.calls == {"search_model_versions": 3}
    assert trends["tpl.a"] == Trend(
        "rmse",
        (
            TrendPoint("1", 7.5, None, "kept"),
            TrendPoint("2", 7.1, 7.9, "kept"),
            TrendPoint("3", 6.8, None, "kept"),
        ),
    )
    assert trends["tpl.b"].points == (TrendPoint("1", 3.0),)
    assert trends["tpl.none"] == Trend()
    assert trends["other.c"].metric == "mae"
    assert set(trends) == {"tpl.a", "tpl.b", "tpl.none", "other.c"}
    json.dumps({name: trend.to_dict() for name, trend in trends.items()}, allow_nan=False)


def test_an_unreachable_registry_leaves_the_trend_empty_with_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    dead = MlflowClient(tracking_uri="http://127.0.0.1:9", registry_uri="http://127.0.0.1:9")

    trends = read_trends(dead, ["tpl.a"])

    assert trends["tpl.a"].points == ()
    assert (trends["tpl.a"].error or "").startswith("trend unavailable: ")
    assert "no judged version" not in render_sparkline(trends["tpl.a"].to_dict())
    assert "trend unavailable" in render_sparkline(trends["tpl.a"].to_dict())


class _Version:
    def __init__(self, version: int, **tags: str) -> None:
        self.version, self.tags = str(version), {k.replace("__", "."): v for k, v in tags.items()}


def test_a_changed_metric_keeps_one_scale_and_the_newest_points() -> None:
    versions = [_Version(i, gate__metric="mae", gate__challenger_score="2.0") for i in (1, 2)]
    versions += [_Version(i, gate__metric="rmse", gate__challenger_score=str(i)) for i in range(3, 30)]
    versions.append(_Version(30, gate__metric="rmse", gate__challenger_score="NaN"))  # no finite score: no point

    trend = trend_of(reversed(versions))  # the registry's order does not matter

    assert trend.metric == "rmse"
    assert len(trend.points) == MAX_POINTS
    assert [p.version for p in trend.points] == [str(i) for i in range(30 - MAX_POINTS, 30)]


def test_the_sparkline_shares_one_scale_between_holdout_and_live() -> None:
    points = [
        {"version": "1", "holdout": 8.0, "live": None},
        {"version": "2", "holdout": 6.0, "live": 10.0},
        {"version": "3", "holdout": 4.0, "live": None},
    ]

    line = sparkline(points, width=100, height=20, pad=0)

    assert line is not None
    assert (line.low, line.high) == (4.0, 10.0)
    # x evenly spread; y from the top (10.0) to the bottom (4.0) of the box.
    assert line.holdout == ((0.0, 6.67), (50.0, 13.33), (100.0, 20.0))
    assert line.live == ((50.0, 0.0),)


def test_a_single_or_flat_trend_is_drawn_in_the_middle_and_an_empty_one_not_at_all() -> None:
    single = sparkline([{"version": "1", "holdout": 5.0}], width=100, height=20, pad=2)
    assert single is not None
    assert single.holdout == ((50, 10.0),)
    flat = sparkline([{"holdout": 1.0}, {"holdout": 1.0}], width=100, height=20, pad=0)
    assert flat is not None
    assert flat.holdout == ((0.0, 10.0), (100.0, 10.0))
    assert sparkline([{"holdout": None, "live": None}]) is None
    assert sparkline([]) is None


def test_the_svg_names_its_values_and_draws_the_live_line_only_when_measured() -> None:
    trend = Trend("rmse", (TrendPoint("1", 7.5), TrendPoint("2", 7.1, 7.9))).to_dict()

    svg = render_sparkline(trend)

    assert svg.startswith('<svg class="trend"')
    assert 'data-versions="2" data-live="1"' in svg
    assert "<title>rmse over 2 version(s): v1: 7.5; v2: 7.1 (live 7.9)</title>" in svg
    assert svg.count('<polyline class="trend-holdout"') == 1
    assert svg.count('<polyline class="trend-live"') == 1
    no_live = render_sparkline(Trend("rmse", (TrendPoint("1", 7.5),)).to_dict())
    assert "trend-live" not in no_live
    assert 'class="reason trend-none"' in render_sparkline(None)


def test_the_versions_read_for_the_trends_spare_the_models_their_own_calls(
    client: MlflowClient, tmp_path: Path
) -> None:
    from airflow_ml.fleet.model_states import read_models
    from airflow_ml.fleet.trends import list_versions, trends_of

    names = ["tpl.a", "tpl.b", "tpl.c"]
    for name in names:
        _version(client, name, tmp_path, gate__metric="rmse", gate__challenger_score=5.0, gate__decision="promoted")
        client.set_registered_model_alias(name, "champion", "1")
    # a: a kept challenger (its champion is not its latest version); b: its newest version still undecided.
    _version(client, "tpl.a", tmp_path, gate__metric="rmse", gate__challenger_score=6.0, gate__decision="kept")
    _version(client, "tpl.b", tmp_path)
    alone = read_models(client, names)
    counting = CountingClient(client)

    versions, errors = list_versions(counting, names)  # type: ignore[arg-type]
    shared = read_models(counting, names, versions=versions)  # type: ignore[arg-type]

    assert counting.calls == {"search_model_versions": 1, "search_registered_models": 1}
    assert shared == alone
    assert (shared["tpl.a"].champion_version, shared["tpl.a"].score, shared["tpl.a"].decision) == ("1", 5.0, "kept")
    assert (shared["tpl.b"].decision, shared["tpl.b"].decision_version) == ("promoted", "1")
    assert errors == {}
    assert [p.holdout for p in trends_of(names, versions, errors)["tpl.a"].points] == [5.0, 6.0]


def test_a_long_history_is_read_only_as_far_as_the_trend_goes(client: MlflowClient, tmp_path: Path) -> None:
    from airflow_ml.fleet.model_states import read_models
    from airflow_ml.fleet.trends import list_versions

    for score in range(MAX_POINTS + 8):
        _version(client, "tpl.a", tmp_path, gate__metric="rmse", gate__challenger_score=score, gate__decision="kept")
    client.set_registered_model_alias("tpl.a", "champion", "1")  # older than every version read
    counting = CountingClient(client)

    versions, _ = list_versions(counting, ["tpl.a"])  # type: ignore[arg-type]
    state = read_models(counting, ["tpl.a"], versions=versions)["tpl.a"]  # type: ignore[arg-type]

    assert sorted(int(v.version) for v in versions["tpl.a"]) == list(range(9, MAX_POINTS + 9))  # the newest only
    assert (state.champion_version, state.score) == ("1", 0.0)  # the old champion, looked up on its own
    assert counting.calls == {"search_model_versions": 1, "search_registered_models": 1, "get_model_version": 1}


def test_a_city_far_behind_the_others_still_gets_its_trend(client: MlflowClient, tmp_path: Path) -> None:
    _version(client, "tpl.b", tmp_path, gate__metric="rmse", gate__challenger_score=3.0)  # registered long ago
    for score in range(3 * MAX_POINTS + 1):  # then the other city retrained night after night
        _version(client, "tpl.a", tmp_path, gate__metric="rmse", gate__challenger_score=score)
    counting = CountingClient(client)

    trends = read_trends(counting, ["tpl.a", "tpl.b", "tpl.never"])  # type: ignore[arg-type]

    assert trends["tpl.b"].points == (TrendPoint("1", 3.0),)
    assert len(trends["tpl.a"].points) == MAX_POINTS
    assert trends["tpl.never"] == Trend()
    # One search of the template's newest versions, then one for each model it missed (the trend cannot tell a
    # model that lags from one never registered; the page asks only for registered ones).
    assert counting.calls == {"search_model_versions": 3}


def test_a_city_retraining_less_often_gets_its_whole_trend_not_the_windows_part(
    client: MlflowClient, tmp_path: Path
) -> None:
    # Review M2: two nightly cities and a weekly one; the window (the template's newest 12 per city) holds only
    # the weekly city's newest two versions, so its trend was two points long while it has six.
    for night in range(40):
        for name in ("tpl.a", "tpl.b"):
            _version(client, name, tmp_path, gate__metric="rmse", gate__challenger_score=night)
        if night % 7 == 0:
            _version(client, "tpl.weekly", tmp_path, gate__metric="rmse", gate__challenger_score=100 + night)
    counting = CountingClient(client)

    trends = read_trends(counting, ["tpl.a", "tpl.b", "tpl.weekly"])  # type: ignore[arg-type]

    assert [p.version for p in trends["tpl.weekly"].points] == ["1", "2", "3", "4", "5", "6"]
    assert len(trends["tpl.a"].points) == len(trends["tpl.b"].points) == MAX_POINTS
    assert counting.calls == {"search_model_versions": 2}  # the template's window, then the weekly city's own


def test_a_new_city_whose_versions_are_all_in_the_window_costs_no_search_of_its_own(
    client: MlflowClient, tmp_path: Path
) -> None:
    for night in range(3 * MAX_POINTS):
        _version(client, "tpl.a", tmp_path, gate__metric="rmse", gate__challenger_score=night)
    for night in range(3):  # added three nights ago: its version 1 is in the window
        _version(client, "tpl.new", tmp_path, gate__metric="rmse", gate__challenger_score=night)
    counting = CountingClient(client)

    trends = read_trends(counting, ["tpl.a", "tpl.new"])  # type: ignore[arg-type]

    assert len(trends["tpl.new"].points) == 3
    assert counting.calls == {"search_model_versions": 1}
