"""The fleet view's header: the counts over all rows, and times told relative to the page ("3 h ago").

Plain Python over the rows of :func:`airflow_ml.fleet.rows.build_rows`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

#: The counts' "last 24 h": the runs that ended in the day before the page was made (rolling, not a night).
LAST_NIGHT = dt.timedelta(hours=24)
#: Gate decisions that moved the champion.
PROMOTED = frozenset({"promoted", "forced"})
#: Drift statuses that mean the data moved (``failed`` stops the run, ``warned`` lets it train).
DRIFTING = frozenset({"warned", "failed"})
_UNITS = (("d", 86_400), ("h", 3_600), ("min", 60))  # the largest that fits, a minute at least
COUNTS = ("cities", "promoted", "kept", "failed", "drifting", "awaiting_approval")


def summarize(rows: Iterable[Mapping[str, Any]], *, now: dt.datetime) -> dict[str, int]:
    """The counts at the top of the page.

    ``promoted``, ``kept`` and ``failed`` count the cities whose last run ended within :data:`LAST_NIGHT`
    of ``now``: failed when the run failed; promoted when it succeeded and its own gate decision moved the
    champion; kept when it succeeded otherwise (the champion stayed: kept, refused, dry run, drift stop...).
    ``drifting`` counts the cities whose last drift check warned or failed, or flagged a feature;
    ``awaiting_approval`` those with a run whose approval task waits for a person.
    """
    counts = dict.fromkeys(COUNTS, 0)
    for row in rows:
        counts["cities"] += 1
        outcome = last_night(row, now=now)
        if outcome is not None:
            counts[outcome] += 1
        drift = row.get("drift") or {}
        if drift.get("status") in DRIFTING or drift.get("flagged"):
            counts["drifting"] += 1
        if row.get("awaiting_approval"):
            counts["awaiting_approval"] += 1
    return counts


def last_night(row: Mapping[str, Any], *, now: dt.datetime) -> str | None:
    """``promoted``, ``kept`` or ``failed`` for a city whose last run ended within :data:`LAST_NIGHT`, else None."""
    run = row.get("last_run")
    ended = parse_time((run or {}).get("end_date"))
    if run is None or ended is None or now - ended > LAST_NIGHT:
        return None
    if run.get("state") == "failed":
        return "failed"
    if run.get("state") != "success":
        return None
    decision = row.get("decision") or {}
    ours = decision.get("run_id") in (None, run["run_id"])
    return "promoted" if ours and decision.get("decision") in PROMOTED else "kept"


def ago(when: str | None, *, now: dt.datetime) -> str:
    """``when`` (ISO time) relative to ``now``: ``just now``, ``12 min ago``, ``3 h ago``, ``5 d ago``, ``in 2 h``."""
    moment = parse_time(when)
    if moment is None:
        return ""
    seconds = (now - moment).total_seconds()
    future, seconds = seconds < 0, abs(seconds)
    if seconds < 60:
        return "just now"
    unit, size = next((u, s) for u, s in _UNITS if seconds >= s)
    amount = int(seconds // size)
    return f"in {amount} {unit}" if future else f"{amount} {unit} ago"


def parse_time(text: str | None) -> dt.datetime | None:
    """An ISO time as an aware datetime (a naive one is taken as UTC); None for None or unreadable text."""
    if not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)
