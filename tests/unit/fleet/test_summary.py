"""The fleet page's header counts, its relative times, display names, the approval link, sorting and filtering keys."""

from __future__ import annotations

import datetime as dt
from html.parser import HTMLParser
from typing import Any

import pytest

from airflow_ml.fleet.html import render
from airflow_ml.fleet.metadata import DISPLAY_SEPARATOR, CityDag, DriftVerdict, LastRun
from airflow_ml.fleet.model_states import ModelState
from airflow_ml.fleet.rows import build_rows
from airflow_ml.fleet.summary import ago, last_night, summarize
from airflow_ml.fleet.trends import Trend, TrendPoint

NOW = dt.datetime(2026, 5, 2, 6, 0, tzinfo=dt.UTC)
NIGHT = dt.datetime(2026, 5, 2, 3, 0, tzinfo=dt.UTC)
WEEK_AGO = NOW - dt.timedelta(days=7)


def _run(run_id: str, state: str, ended: dt.datetime | None = NIGHT) -> LastRun:
    return LastRun(run_id, state, "scheduled", ended, ended, ended)


def _fleet() -> list[dict[str, Any]]:
    dags = [
        CityDag("tpl.sao_paulo", "sao_paulo", display_name="São Paulo · tpl"),
        CityDag("tpl.berlin", "berlin", display_name="Berlin · tpl"),
        CityDag("tpl.lisbon", "lisbon"),
        CityDag("other.porto", "porto", display_name="Porto · other"),
        CityDag("other.oslo", "oslo", display_name="other.oslo"),  # Airflow's default: the id
        CityDag("other.rome", "rome"),
    ]
    runs = {
        "tpl.sao_paulo": _run("n1", "success"),
        "tpl.berlin": _run("n2", "success"),
        "tpl.lisbon": _run("n3", "failed"),
        "other.porto": _run("n4", "running", ended=None),
        "other.oslo": _run("old", "success", ended=WEEK_AGO),
    }
    models = {
        "tpl.sao_paulo": ModelState("tpl.sao_paulo", True, "2", "rmse", 6.0, "promoted", "won", "2", "n1"),
        "tpl.berlin": ModelState("tpl.berlin", True, "1", "rmse", 7.0, "promoted", "won long ago", "1", "earlier"),
        "tpl.lisbon": ModelState("tpl.lisbon", True),
        "other.porto": ModelState("other.porto", True, "1", "mae", 2.0, "awaiting-approval", "asks", "2", "n4"),
        "other.oslo": ModelState("other.oslo", True, "3", "mae", 1.0, "promoted", "won", "3", "old"),
        "other.rome": ModelState("other.rome"),
    }
    drifts = {
        "tpl.sao_paulo": DriftVerdict("n1", "warned", "psi 0.12"),
        "tpl.berlin": DriftVerdict("n2", "passed", None, "1", {"distance_km": 0.01}),  # flagged after adjustment
        "tpl.lisbon": DriftVerdict("n3", "failed", "psi 0.4"),
        "other.oslo": DriftVerdict("old", "passed"),
    }
    trends = {"tpl.sao_paulo": Trend("rmse", (TrendPoint("1", 7.0), TrendPoint("2", 6.0, 6.4)))}
    return build_rows(dags, runs, drifts, models, trends=trends, approvals={"other.porto": "n4"}, ui_root="/")


def test_the_counts_tell_last_nights_outcomes_drift_and_waiting_approvals() -> None:
    rows = {row["dag_id"]: row for row in _fleet()}

    assert summarize(rows.values(), now=NOW) == {
        "cities": 6,
        "promoted": 1,  # São Paulo's own run promoted
        "kept": 1,  # Berlin's run succeeded; its champion's promotion is an older run's
        "failed": 1,  # Lisbon
        "drifting": 3,  # warned, failed, and a feature flagged after the fleet's adjustment
        "awaiting_approval": 1,  # Porto
    }
    assert last_night(rows["other.oslo"], now=NOW) is None  # a week ago is not last night
    assert last_night(rows["other.porto"], now=NOW) is None  # still running


def test_display_names_head_the_rows_and_the_waiting_run_links_to_required_actions() -> None:
    rows = {row["dag_id"]: row for row in _fleet()}

    assert rows["tpl.sao_paulo"]["display_name"] == "São Paulo"
    assert rows["tpl.lisbon"]["display_name"] == "lisbon"  # no display name: the city id
    assert rows["other.oslo"]["display_name"] == "oslo"
    assert rows["other.porto"]["awaiting_approval"] == "n4"
    assert rows["other.porto"]["links"]["required_actions"] == "/dags/other.porto/runs/n4/required_actions"
    assert rows["tpl.berlin"]["links"]["required_actions"] is None
    assert rows["tpl.sao_paulo"]["trend"]["points"][-1] == {
        "version": "2",
        "holdout": 6.0,
        "live": 6.4,
        "decision": None,
    }
    assert rows["tpl.lisbon"]["trend"] is None


def test_the_separator_is_the_factorys() -> None:
    from airflow_ml.factory.display_names import SEPARATOR

    assert DISPLAY_SEPARATOR == SEPARATOR


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (NOW - dt.timedelta(seconds=20), "just now"),
        (NOW - dt.timedelta(minutes=12, seconds=40), "12 min ago"),
        (NOW - dt.timedelta(hours=3, minutes=59), "3 h ago"),
        (NOW - dt.timedelta(days=5, hours=23), "5 d ago"),
        (NOW + dt.timedelta(hours=2, minutes=1), "in 2 h"),
    ],
)
def test_times_read_relative_to_the_page(when: dt.datetime, expected: str) -> None:
    assert ago(when.isoformat(), now=NOW) == expected


def test_a_naive_or_missing_time_is_taken_as_utc_or_left_out() -> None:
    assert ago("2026-05-02T03:00:00", now=NOW) == "3 h ago"
    assert ago(None, now=NOW) == ago("not a time", now=NOW) == ""


class _Page(HTMLParser):
    """The page's rows (their attributes and cells' attributes), counts, filter options and times."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, dict[str, dict[str, str]]] = {}
        self.counts: dict[str, str] = {}
        self.filters: dict[str, list[str]] = {}
        self.times: list[dict[str, str]] = []
        self._row: str | None = None
        self._count: str | None = None
        self._select: str | None = None
        self._in_count = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag == "tr" and "fleet-row" in found.get("class", ""):
            self._row = found["data-dag-id"]
            self.rows[self._row] = {"row": found}
        elif tag == "td" and self._row:
            self.rows[self._row][found["class"].split()[0]] = found
        elif tag == "li" and "data-count" in found:
            self._count = found["data-count"]
        elif tag == "span" and found.get("class") == "count":
            self._in_count = True
        elif tag == "select":
            self._select = found["data-filter"]
            self.filters[self._select] = []
        elif tag == "option" and self._select:
            self.filters[self._select].append(found["value"])
        elif tag == "time":
            self.times.append(found)

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None

    def handle_data(self, data: str) -> None:
        if self._in_count and self._count:
            self.counts[self._count] = data
            self._in_count = False


def test_the_page_shows_counts_filters_sort_keys_relative_times_and_the_trend() -> None:
    page = _Page()

    page.feed(render(_fleet(), generated_at=NOW.isoformat()))

    assert page.counts == {
        "cities": "6",
        "promoted": "1",
        "kept": "1",
        "failed": "1",
        "drifting": "3",
        "awaiting_approval": "1",
    }
    assert page.filters == {
        "template": ["", "other", "tpl"],
        "decision": ["", "awaiting-approval", "none", "promoted"],
        "drift": ["", "failed", "none", "passed", "warned"],
    }
    sao_paulo = page.rows["tpl.sao_paulo"]
    assert (sao_paulo["row"]["data-template"], sao_paulo["row"]["data-decision"]) == ("tpl", "promoted")
    assert sao_paulo["row"]["data-drift"] == "warned"
    assert sao_paulo["city"]["data-sort"] == "são paulo"
    assert sao_paulo["last-run"]["data-sort"] == str(int(NIGHT.timestamp()))
    assert sao_paulo["trend"]["data-sort"] == "6.0"
    assert page.rows["other.rome"]["row"]["data-decision"] == "none"
    assert {"datetime": NIGHT.isoformat(), "title": "2026-05-02 03:00:00 UTC"} in page.times


def test_the_waiting_row_links_to_required_actions_in_the_top_window() -> None:
    html = render(_fleet(), generated_at=NOW.isoformat())

    assert (
        '<a class="required-actions-link" href="/dags/other.porto/runs/n4/required_actions" target="_top">'
        "approve or reject</a>"
    ) in html
    assert html.count("required-actions-link") == 1
    assert ">São Paulo</a>" in html
