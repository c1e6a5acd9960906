"""Which cities' newest p-values form the family: members, and records recent enough (``Family.left_out``)."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from airflow_ml.ml.drift_family import Family

NOW = dt.datetime(2026, 5, 1, 6, tzinfo=dt.UTC)


def _fleet(rows: list[tuple[str, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"city": city, "recorded_at": at, "column": "x", "statistic": "psi", "p_value": 0.5} for city, at in rows]
    )


def test_left_out_names_each_city_outside_the_family_and_why() -> None:
    fleet = _fleet(
        [
            ("oslo", "2026-04-30T02:00:00+00:00"),
            ("oslo", "2026-04-29T02:00:00+00:00"),
            ("rome", "2026-02-01T02:00:00+00:00"),  # newest record older than 45 days
            ("rome", "2026-01-31T02:00:00+00:00"),
            ("lima", "not a date"),  # no readable date: never recent enough
            ("kyiv", "2026-04-30T04:00:00+02:00"),  # another offset, read in UTC
            ("kyiv", "garbled"),  # one unreadable row beside a recent one: the recent one counts
            ("paris", "2026-04-30T02:00:00+00:00"),  # recent, but not a member
        ]
    )
    family = Family(members=("kyiv", "lima", "oslo", "rome"), max_age_days=45, source="review")

    out = family.left_out(fleet, now=NOW)

    assert out == {
        "lima": "newest drift record not a date is older than drift.calibration.max_age_days 45",
        "paris": "not a reviewed city of the template (removed, or its drift calibration is off)",
        "rome": "newest drift record 2026-02-01T02:00:00+00:00 is older than drift.calibration.max_age_days 45",
    }
    assert set(family.tests(fleet, now=NOW)["city"]) == {"kyiv", "oslo"}  # the same cities kept, by the same rule


def test_without_a_review_every_city_is_a_member_and_only_age_leaves_one_out() -> None:
    fleet = _fleet([("oslo", "2026-04-30T02:00:00+00:00"), ("rome", "2026-03-01T02:00:00+00:00")])

    out = Family(members=None, max_age_days=45, source="no_review_yet").left_out(fleet, now=NOW)

    assert list(out) == ["rome"]
