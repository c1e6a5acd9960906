"""The fleet as one HTML page: a table with a row per city, no script, every value escaped.

The structure is a contract for browser tests and for people scripting the page:

- ``table#fleet-table``; each city is a ``tr.fleet-row`` with ``data-dag-id``, ``data-city`` and, when its
  model could not be read, the class ``registry-error``; a city the kill switch disables has the class
  ``disabled`` and, in ``td.champion``, a ``span.disabled-badge`` whose ``.reason`` says why, who and since when;
- its cells are ``td.city``, ``td.last-run`` (``data-state``), ``td.champion`` (``data-version``),
  ``td.metric`` (``data-metric``, ``data-value``), ``td.live`` (the monitor's newest live metric of the
  champion: ``data-value``, ``data-verdict``), ``td.decision`` (``data-decision``), ``td.naive-baseline``
  (the last decision's skill over the naive baseline: ``data-skill``, ``data-passed``), ``td.drift``
  (``data-status``; the features flagged after the fleet's adjustment as ``ul.flagged`` of ``li`` with
  ``data-column`` and ``data-q``) and ``td.links``; a cell's explanation is in its ``.reason`` element;
- links: ``td.city a.city-link`` and ``td.links a.dag-link`` (the DAG in the Airflow UI), ``td.last-run a.run-link``,
  ``a.mlflow-model-link`` and ``a.mlflow-champion-link`` (only when the MLflow store has a UI);
- ``p#fleet-empty`` replaces the table's body when no city DAG is visible.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1rem;color:#1f2328}
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #d0d7de;padding:.4rem .6rem;
text-align:left;vertical-align:top}th{background:#f6f8fa}.reason{color:#59636e;font-size:.85em;max-width:28rem}
.badge{border-radius:1em;padding:0 .5em;font-weight:600}.ok{background:#dafbe1}.bad{background:#ffebe9}
.warn{background:#fff8c5}.idle{background:#eaeef2}.registry-error td.champion{color:#cf222e}
"""
_GOOD = {"success", "passed", "promoted", "forced", "healthy"}
_BAD = {"failed", "upstream_failed", "rejected", "demote"}
_WARN = {"warned", "running", "queued", "awaiting-approval", "dry-run", "alert"}


def render(rows: Sequence[dict[str, Any]], *, generated_at: str, user: str | None = None) -> str:
    """The page for ``rows`` (as :func:`airflow_ml.fleet.rows.build_rows` makes them)."""
    names = ("City", "Last run", "Champion", "Metric", "Live", "Last decision", "Vs naive", "Drift", "Links")
    head = "".join(f"<th>{name}</th>" for name in names)
    body = "".join(_row(row) for row in rows)
    table = (
        f'<table id="fleet-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
        if rows
        else '<p id="fleet-empty">No airflow-ml city DAG is visible to you yet.</p>'
    )
    who = f" for {escape(user)}" if user else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>airflow-ml fleet</title>'
        f"<style>{_STYLE}</style></head><body>"
        f'<h1>Fleet</h1><p id="fleet-summary">{len(rows)} city DAG(s), as of '
        f'<time datetime="{escape(generated_at)}">{escape(generated_at)}</time>{who}.</p>'
        f"{table}</body></html>"
    )


def _row(row: dict[str, Any]) -> str:
    links = row["links"]
    classes = "fleet-row registry-error" if row["registry_error"] else "fleet-row"
    if row.get("disabled"):
        classes += " disabled"
    return (
        f'<tr class="{classes}" id="fleet-row-{_attr(row["dag_id"])}" data-dag-id="{_attr(row["dag_id"])}" '
        f'data-city="{_attr(row["city"])}">'
        f'<td class="city"><a class="city-link" href="{_attr(links["dag"])}" target="_top">{escape(row["city"])}</a>'
        f'<div class="reason">{escape(row["dag_id"])}{" (paused)" if row["paused"] else ""}</div></td>'
        f"{_last_run(row)}{_champion(row)}{_metric(row)}{_live(row)}{_decision(row)}{_naive(row)}{_drift(row)}"
        f"{_links(links)}</tr>"
    )


def _last_run(row: dict[str, Any]) -> str:
    run = row["last_run"]
    if run is None:
        return '<td class="last-run" data-state="none"><span class="badge idle">never run</span></td>'
    state = run["state"] or "unknown"
    link = row["links"]["last_run"]
    when = run["end_date"] or run["start_date"] or run["run_after"]
    return (
        f'<td class="last-run" data-state="{_attr(state)}">{_badge(state)}'
        f'<div class="reason"><a class="run-link" href="{_attr(link)}" target="_top">{escape(run["run_id"])}</a>'
        f"{'<br><time>' + escape(when) + '</time>' if when else ''}</div></td>"
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
        return f'<td class="champion" data-version="">{off}<span class="reason">{note}</span></td>'
    version = _attr(champion["version"])
    return f'<td class="champion" data-version="{version}">v{escape(champion["version"])}{off}</td>'


def _metric(row: dict[str, Any]) -> str:
    champion = row["champion"] or {}
    metric, value = champion.get("metric"), champion.get("value")
    if metric is None or value is None:
        return '<td class="metric" data-metric="" data-value="">—</td>'
    return f'<td class="metric" data-metric="{_attr(metric)}" data-value="{value!r}">{escape(metric)} {value:.4g}</td>'


def _live(row: dict[str, Any]) -> str:
    """The live metric beside the holdout one: value, interval, trend from the window before, the verdict."""
    live = row.get("live") or {}
    value, verdict = live.get("value"), live.get("verdict") or ""
    if not live:
        return '<td class="live" data-value="" data-verdict="">—</td>'
    shown = "no labels yet" if value is None else f"{value:.4g}"
    if value is not None and live.get("low") is not None and live.get("high") is not None:
        shown += f" [{live['low']:.4g}, {live['high']:.4g}]"
    previous = live.get("previous")
    if value is not None and previous is not None:
        shown += " ↑" if value > previous else " ↓" if value < previous else " →"
    where = f"{live.get('window') or ''}, {live.get('labels')} labels" if live.get("window") else ""
    return (
        f'<td class="live" data-value="{"" if value is None else repr(value)}" data-verdict="{_attr(verdict)}">'
        f'{escape(shown)}<div class="reason">{_badge(verdict)} {escape(where)}</div></td>'
    )


def _decision(row: dict[str, Any]) -> str:
    decision = row["decision"]
    if decision is None:
        note = escape(row["registry_error"]) if row["registry_error"] else "no decision yet"
        return f'<td class="decision" data-decision=""><span class="reason">{note}</span></td>'
    version = f" (v{escape(decision['version'])})" if decision["version"] else ""
    return (
        f'<td class="decision" data-decision="{_attr(decision["decision"])}">{_badge(decision["decision"])}{version}'
        f'<div class="reason">{escape(decision["reason"] or "")}</div></td>'
    )


def _naive(row: dict[str, Any]) -> str:
    naive = row.get("naive_baseline")
    if not naive or naive.get("skill") is None:
        why = "no skill measured" if naive else "—"
        verdict = "" if not naive else str(bool(naive.get("passed"))).lower()
        cell = f'<td class="naive-baseline" data-skill="" data-passed="{verdict}">'
        return f'{cell}<span class="reason">{why}</span></td>'
    skill, passed = float(naive["skill"]), bool(naive["passed"])
    score = "n/a" if naive.get("score") is None else f"{float(naive['score']):.4g}"
    required = f", required {float(naive['min_skill']):.1%}" if naive.get("min_skill") else ""
    what = f"vs training {naive['statistic']}: {naive['metric']} {score}{required}"
    return (
        f'<td class="naive-baseline" data-skill="{skill!r}" data-passed="{str(passed).lower()}">'
        f'{_badge("passed" if passed else "failed", f"{skill:+.1%}")}<div class="reason">{escape(what)}</div></td>'
    )


def _drift(row: dict[str, Any]) -> str:
    drift = row["drift"]
    if drift is None:
        return '<td class="drift" data-status="none"><span class="reason">not checked yet</span></td>'
    flagged = "".join(
        f'<li data-column="{_attr(f["column"])}" data-q="{f["q_value"]!r}">'
        f"{escape(f['column'])} q={f['q_value']:.2g}</li>"
        for f in drift.get("flagged") or []
    )
    listed = f'<ul class="flagged">{flagged}</ul>' if flagged else ""
    return (
        f'<td class="drift" data-status="{_attr(drift["status"])}">{_badge(drift["status"])}'
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


def _badge(value: str, text: str | None = None) -> str:
    tone = "ok" if value in _GOOD else "bad" if value in _BAD else "warn" if value in _WARN else "idle"
    return f'<span class="badge {tone}">{escape(value if text is None else text)}</span>'


def _attr(value: Any) -> str:
    return escape(str(value), quote=True)
