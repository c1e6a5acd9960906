"""One ``tr.fleet-row`` of the fleet page: its cells, every value escaped, each with the ``data-sort`` key the
page's script sorts by. The structure is described in :mod:`airflow_ml.fleet.html`."""

from __future__ import annotations

import datetime as dt
from html import escape
from typing import Any

from airflow_ml.fleet.sparkline import render_sparkline
from airflow_ml.fleet.summary import ago, parse_time

_GOOD = {"success", "passed", "promoted", "forced", "healthy"}
_BAD = {"failed", "upstream_failed", "rejected", "demote", "error"}
_WARN = {"warned", "running", "queued", "awaiting-approval", "dry-run", "alert", "deferred", "awaiting_input"}


def render_row(row: dict[str, Any], *, now: dt.datetime) -> str:
    """The row of one city (as :func:`airflow_ml.fleet.rows.build_rows` makes it), its times relative to ``now``."""
    links = row["links"]
    classes = "fleet-row registry-error" if row["registry_error"] else "fleet-row"
    if row.get("disabled"):
        classes += " disabled"
    decision = (row["decision"] or {}).get("decision") or "none"
    drift = (row["drift"] or {}).get("status") or "none"
    return (
        f'<tr class="{classes}" id="fleet-row-{_attr(row["dag_id"])}" data-dag-id="{_attr(row["dag_id"])}" '
        f'data-city="{_attr(row["city"])}" data-template="{_attr(row["template"])}" '
        f'data-decision="{_attr(decision)}" data-drift="{_attr(drift)}">'
        f'<td class="city" data-sort="{_attr(row["display_name"].casefold())}">'
        f'<a class="city-link" href="{_attr(links["dag"])}" target="_top">{escape(row["display_name"])}</a>'
        f'<div class="reason">{escape(row["dag_id"])}{" (paused)" if row["paused"] else ""}</div></td>'
        f"{_last_run(row, now)}{_champion(row)}{_metric(row)}{_trend(row)}{_live(row)}{_decision(row)}"
        f"{_naive(row)}{_drift(row)}{_links(links)}</tr>"
    )


def when(iso: str | None, *, now: dt.datetime) -> str:
    """A ``<time>`` that reads "3 h ago", the absolute time (UTC) in its ``datetime`` and its tooltip."""
    moment = parse_time(iso)
    if moment is None:
        return ""
    absolute = moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f'<time datetime="{_attr(moment.isoformat())}" title="{absolute}">{escape(ago(iso, now=now))}</time>'


def _last_run(row: dict[str, Any], now: dt.datetime) -> str:
    run = row["last_run"]
    if run is None:
        return '<td class="last-run" data-state="none" data-sort=""><span class="badge idle">never run</span></td>'
    state = run["state"] or "unknown"
    link = row["links"]["last_run"]
    moment = run["end_date"] or run["start_date"] or run["run_after"]
    return (
        f'<td class="last-run" data-state="{_attr(state)}" data-sort="{_attr(_epoch(moment))}">{_badge(state)} '
        f"{when(moment, now=now)}"
        f'<div class="reason"><a class="run-link" href="{_attr(link)}" target="_top">{escape(run["run_id"])}</a>'
        "</div></td>"
    )


def _champion(row: dict[str, Any]) -> str:
    champion = row["champion"]
    mark = row.get("disabled")
    off = ""
    if mark:
        why = f"{mark['reason']} (by {mark['by']}, since {mark['at']}; airflow-ml enable serves it again)"
        off = f'<span class="badge bad disabled-badge">disabled</span><div class="reason">{escape(why)}</div>'
    if champion is None:
        note = escape(row["champion_note"] or "")
        return f'<td class="champion" data-version="" data-sort="">{off}<span class="reason">{note}</span></td>'
    version = _attr(champion["version"])
    return (
        f'<td class="champion" data-version="{version}" data-sort="{version}">v{escape(champion["version"])}{off}</td>'
    )


def _metric(row: dict[str, Any]) -> str:
    champion = row["champion"] or {}
    metric, value = champion.get("metric"), champion.get("value")
    if metric is None or value is None:
        return '<td class="metric" data-metric="" data-value="" data-sort="">—</td>'
    return (
        f'<td class="metric" data-metric="{_attr(metric)}" data-value="{value!r}" data-sort="{value!r}">'
        f"{escape(metric)} {value:.4g}</td>"
    )


def _trend(row: dict[str, Any]) -> str:
    """The sparkline of the city's versions; sorted by the newest version's holdout score."""
    trend = row.get("trend") or {}
    points = [p for p in trend.get("points") or [] if p.get("holdout") is not None]
    key = repr(points[-1]["holdout"]) if points else ""
    return f'<td class="trend" data-sort="{key}">{render_sparkline(trend)}</td>'


def _live(row: dict[str, Any]) -> str:
    """The live metric beside the holdout one: value, interval, trend from the window before, the verdict."""
    live = row.get("live") or {}
    value, verdict = live.get("value"), live.get("verdict") or ""
    if not live:
        return '<td class="live" data-value="" data-verdict="" data-sort="">—</td>'
    shown = "no labels yet" if value is None else f"{value:.4g}"
    if value is not None and live.get("low") is not None and live.get("high") is not None:
        shown += f" [{live['low']:.4g}, {live['high']:.4g}]"
    previous = live.get("previous")
    if value is not None and previous is not None:
        shown += " ↑" if value > previous else " ↓" if value < previous else " →"
    where = f"{live.get('window') or ''}, {live.get('labels')} labels" if live.get("window") else ""
    number = "" if value is None else repr(value)
    return (
        f'<td class="live" data-value="{number}" data-verdict="{_attr(verdict)}" data-sort="{number}">'
        f'{escape(shown)}<div class="reason">{_badge(verdict)} {escape(where)}</div></td>'
    )


def _decision(row: dict[str, Any]) -> str:
    decision = row["decision"]
    waiting = row["links"].get("required_actions")
    ask = (
        f' <a class="required-actions-link" href="{_attr(waiting)}" target="_top">approve or reject</a>'
        if waiting
        else ""
    )
    if decision is None:
        note = escape(row["registry_error"]) if row["registry_error"] else "no decision yet"
        return f'<td class="decision" data-decision="" data-sort="">{ask}<span class="reason">{note}</span></td>'
    version = f" (v{escape(decision['version'])})" if decision["version"] else ""
    label = _attr(decision["decision"])
    return (
        f'<td class="decision" data-decision="{label}" data-sort="{label}">{_badge(decision["decision"])}'
        f'{version}{ask}<div class="reason">{escape(decision["reason"] or "")}</div></td>'
    )


def _naive(row: dict[str, Any]) -> str:
    naive = row.get("naive_baseline")
    if not naive or naive.get("skill") is None:
        why = "no skill measured" if naive else "—"
        verdict = "" if not naive else str(bool(naive.get("passed"))).lower()
        cell = f'<td class="naive-baseline" data-skill="" data-passed="{verdict}" data-sort="">'
        return f'{cell}<span class="reason">{why}</span></td>'
    skill, passed = float(naive["skill"]), bool(naive["passed"])
    score = "n/a" if naive.get("score") is None else f"{float(naive['score']):.4g}"
    required = f", required {float(naive['min_skill']):.1%}" if naive.get("min_skill") else ""
    what = f"vs training {naive['statistic']}: {naive['metric']} {score}{required}"
    return (
        f'<td class="naive-baseline" data-skill="{skill!r}" data-passed="{str(passed).lower()}" data-sort="{skill!r}">'
        f'{_badge("passed" if passed else "failed", f"{skill:+.1%}")}<div class="reason">{escape(what)}</div></td>'
    )


def _drift(row: dict[str, Any]) -> str:
    drift = row["drift"]
    if drift is None:
        return '<td class="drift" data-status="none" data-sort=""><span class="reason">not checked yet</span></td>'
    flagged = "".join(
        f'<li data-column="{_attr(f["column"])}" data-q="{f["q_value"]!r}">'
        f"{escape(f['column'])} q={f['q_value']:.2g}</li>"
        for f in drift.get("flagged") or []
    )
    listed = f'<ul class="flagged">{flagged}</ul>' if flagged else ""
    status = _attr(drift["status"])
    return (
        f'<td class="drift" data-status="{status}" data-sort="{status}">{_badge(drift["status"])}'
        f'<div class="reason">{escape(drift["detail"] or "")}</div>{listed}</td>'
    )


def _links(links: dict[str, Any]) -> str:
    parts = [f'<a class="dag-link" href="{_attr(links["dag"])}" target="_top">DAG</a>']
    if links["mlflow_model"]:
        parts.append(f'<a class="mlflow-model-link" href="{_attr(links["mlflow_model"])}" target="_blank">MLflow</a>')
    if links["mlflow_champion"]:
        parts.append(
            f'<a class="mlflow-champion-link" href="{_attr(links["mlflow_champion"])}" target="_blank">champion</a>'
        )
    return f'<td class="links">{" · ".join(parts)}</td>'


def _epoch(iso: str | None) -> str:
    """A time as seconds since the epoch: the page sorts numbers, and ISO times with offsets do not sort as text."""
    moment = parse_time(iso)
    return "" if moment is None else f"{moment.timestamp():.0f}"


def _badge(value: str, text: str | None = None) -> str:
    tone = "ok" if value in _GOOD else "bad" if value in _BAD else "warn" if value in _WARN else "idle"
    return f'<span class="badge {tone}">{escape(value if text is None else text)}</span>'


def _attr(value: Any) -> str:
    return escape(str(value), quote=True)
