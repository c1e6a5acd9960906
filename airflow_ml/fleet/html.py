"""The fleet as one HTML page in Airflow's look: counts, filters, and a table with a row per city.

The structure is a contract for browser tests and for people scripting the page:

- ``html`` has the class ``light`` or ``dark`` (and ``data-theme``), following the Airflow UI's colour mode
  (:mod:`airflow_ml.fleet.page_static`);
- ``ul#fleet-counts`` holds one ``li[data-count]`` per count of :func:`airflow_ml.fleet.summary.summarize`
  (``cities``, ``promoted``, ``kept``, ``failed``, ``drifting``, ``awaiting_approval``), its number in
  ``.count``;
- ``select[data-filter]`` (``#filter-template``, ``#filter-decision``, ``#filter-drift``) hide the rows whose
  ``data-template``, ``data-decision`` or ``data-drift`` differ; ``#fleet-shown`` says how many are shown;
- ``table#fleet-table``; each ``th`` but the links' holds a ``button[data-sort]`` naming the cell class it
  sorts by (the ``th`` then has ``aria-sort``); each city is a ``tr.fleet-row`` with ``data-dag-id``,
  ``data-city``, ``data-template``, ``data-decision`` and ``data-drift`` (``none`` when there is none) and, when
  its model could not be read, the class ``registry-error``; a city the kill switch disables has the class
  ``disabled`` and, in ``td.champion``, a ``span.disabled-badge`` whose ``.reason`` says why, who and since when;
- its cells are ``td.city`` (the display name), ``td.last-run`` (``data-state``; its time as ``time`` reading
  "3 h ago" with the absolute time in ``datetime`` and ``title``), ``td.champion`` (``data-version``),
  ``td.metric`` (``data-metric``, ``data-value``), ``td.trend`` (``svg.trend`` with ``data-versions`` and
  ``data-live``, a ``polyline.trend-holdout`` and, once the monitor measured a version, a
  ``polyline.trend-live``), ``td.live`` (the monitor's newest live metric of the champion: ``data-value``,
  ``data-verdict``), ``td.decision`` (``data-decision``; ``a.required-actions-link`` when a run waits for
  approval), ``td.naive-baseline`` (``data-skill``, ``data-passed``), ``td.drift`` (``data-status``; the
  features flagged after the fleet's adjustment as ``ul.flagged`` of ``li`` with ``data-column`` and
  ``data-q``) and ``td.links``; every cell but the links has its sort key in ``data-sort``; a cell's
  explanation is in its ``.reason`` element;
- links: ``td.city a.city-link`` and ``td.links a.dag-link`` (the DAG in the Airflow UI), ``td.last-run a.run-link``,
  ``a.mlflow-model-link`` and ``a.mlflow-champion-link`` (only when the MLflow store has a UI);
- ``p#fleet-empty`` replaces the table when no city DAG is visible.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from airflow_ml.fleet.cells import render_row, when
from airflow_ml.fleet.page_static import LINK_SCRIPT, STYLE, TABLE_SCRIPT, THEME_SCRIPT
from airflow_ml.fleet.summary import COUNTS, parse_time, summarize

#: The table's columns: header and the cell class it sorts by (None: not sortable).
COLUMNS = (
    ("City", "city"),
    ("Last run", "last-run"),
    ("Champion", "champion"),
    ("Metric", "metric"),
    ("Trend", "trend"),
    ("Live", "live"),
    ("Last decision", "decision"),
    ("Vs naive", "naive-baseline"),
    ("Drift", "drift"),
    ("Links", None),
)
_COUNT_LABELS = {
    "cities": "cities",
    "promoted": "promoted in the last 24 h",
    "kept": "kept in the last 24 h",
    "failed": "failed in the last 24 h",
    "drifting": "drifting",
    "awaiting_approval": "awaiting approval",
}
_FILTERS = (("template", "Template"), ("decision", "Decision"), ("drift", "Drift"))


def render(
    rows: Sequence[dict[str, Any]],
    *,
    generated_at: str,
    user: str | None = None,
    summary: Mapping[str, int] | None = None,
) -> str:
    """The page for ``rows`` (as :func:`airflow_ml.fleet.rows.build_rows` makes them), made at ``generated_at``.

    ``summary`` is :func:`~airflow_ml.fleet.summary.summarize` of the rows, computed here when not given.
    """
    now = parse_time(generated_at) or dt.datetime.now(dt.UTC)
    counts = summary if summary is not None else summarize(rows, now=now)
    who = f" for {escape(user)}" if user else ""
    body = _table(rows, now) if rows else '<p id="fleet-empty">No airflow-ml city DAG is visible to you yet.</p>'
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>airflow-ml fleet</title>'
        f'<meta name="color-scheme" content="light dark"><style>{STYLE}</style><script>{THEME_SCRIPT}</script>'
        f'</head><body><h1>Fleet</h1><p id="fleet-summary">{len(rows)} city DAG(s), as of '
        f"{when(generated_at, now=now) or escape(generated_at)}{who}.</p>"
        f"{_counts(counts)}{body}<script>{TABLE_SCRIPT}{LINK_SCRIPT}</script></body></html>"
    )


def _counts(counts: Mapping[str, int]) -> str:
    items = "".join(
        f'<li data-count="{name}"><span class="count">{int(counts.get(name, 0))}</span>{_COUNT_LABELS[name]}</li>'
        for name in COUNTS
    )
    title = "the last 24 h: runs that ended in the 24 hours before this page (times in UTC)"
    return f'<ul id="fleet-counts" title="{title}">{items}</ul>'


def _table(rows: Sequence[dict[str, Any]], now: dt.datetime) -> str:
    head = "".join(
        f'<th><button type="button" data-sort="{key}">{name}</button></th>' if key else f"<th>{name}</th>"
        for name, key in COLUMNS
    )
    body = "".join(render_row(row, now=now) for row in rows)
    return f'{_filters(rows)}<table id="fleet-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _filters(rows: Sequence[dict[str, Any]]) -> str:
    """A select per filter, offering the values the rows hold (``none``: no decision or drift check yet)."""
    values = {
        "template": {row["template"] for row in rows},
        "decision": {(row["decision"] or {}).get("decision") or "none" for row in rows},
        "drift": {(row["drift"] or {}).get("status") or "none" for row in rows},
    }
    selects = []
    for key, label in _FILTERS:
        options = "".join(f'<option value="{escape(v, quote=True)}">{escape(v)}</option>' for v in sorted(values[key]))
        selects.append(
            f'<label>{label} <select id="filter-{key}" data-filter="{key}"><option value="">all</option>'
            f"{options}</select></label>"
        )
    legend = (
        '<span class="reason">Trend: <span class="legend-holdout">── holdout score of each version</span>, '
        '<span class="legend-live">╌╌ live score while champion</span></span>'
    )
    return (
        f'<div id="fleet-filters">{"".join(selects)}<span id="fleet-shown" class="reason">{len(rows)} of '
        f"{len(rows)} shown</span>{legend}</div>"
    )
