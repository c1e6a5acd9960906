"""What serves each city, read at most once per interval (airflow_ml.scoring.http_fleet).

The interval is this module's feature: a counting reader stands for the registry here; the registry's real
answers (own champion, parent, kill switch) are checked against a real MLflow store below and in test_http_app.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_ml.ml import kill_switch
from airflow_ml.scoring.http_fleet import Route, RouteTable, ServedCity, bounded, read_route
from tests.support.serving_models import client_of

CITY = ServedCity("ride_duration", "lisbon", "ride_duration.lisbon", "ride_duration.global", ("x",), "/tmp/log")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def counting_reader(calls: list[str], delay: float = 0.0) -> Any:
    def read(client: Any, city: ServedCity) -> Route:
        calls.append(city.path)
        time.sleep(delay)
        return Route(city.model_name, str(len(calls)), "own", "its own champion")

    return read


def test_an_answer_is_trusted_for_the_ttl_then_read_again() -> None:
    calls: list[str] = []
    clock = Clock()
    table = RouteTable(None, ttl=30, reader=counting_reader(calls), clock=clock)  # type: ignore[arg-type]

    assert table.route(CITY).version == "1"
    clock.now += 29.9
    assert table.route(CITY).version == "1"
    clock.now += 0.1
    assert table.route(CITY).version == "2"
    table.forget(CITY)
    assert table.route(CITY).version == "3"
    assert calls == [CITY.path] * 3
    assert table.reads == 3


def test_many_threads_asking_for_a_stale_city_read_it_once() -> None:
    calls: list[str] = []
    table = RouteTable(None, ttl=60, reader=counting_reader(calls, delay=0.2))  # type: ignore[arg-type]
    answers: list[str | None] = []
    threads = [threading.Thread(target=lambda: answers.append(table.route(CITY).version)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert answers == ["1"] * 8
    assert len(calls) == 1


def test_a_negative_ttl_is_refused() -> None:
    with pytest.raises(ValueError, match="ttl=-1: seconds, 0 or more"):
        RouteTable(None, ttl=-1)  # type: ignore[arg-type]


def test_the_registry_says_nothing_serves_and_a_disabled_parent_serves_nobody(tmp_path: Path) -> None:
    client = client_of(f"sqlite:///{tmp_path}/mlflow.db")

    nothing = read_route(client, CITY)
    assert (nothing.source, nothing.model_name) == ("none", None)
    assert nothing.reason.startswith("no model serves it: it has no registered model yet")

    kill_switch.disable(client, "ride_duration.lisbon", reason="bad data", by="ops")
    off = read_route(client, CITY)
    assert off.disabled is not None
    assert (off.source, off.disabled.reason, off.disabled.by) == ("disabled", "bad data", "ops")
    assert off.to_dict()["reason"] == off.reason


def test_bounded_lists_name_how_many_more_there_are() -> None:
    assert bounded(["b", "a"]) == "a, b"
    assert bounded([f"c{i:02d}" for i in range(25)], limit=3) == (
        "c00, c01, c02 (and 22 more: GET /v1/models lists them all)"
    )
