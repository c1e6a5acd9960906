"""A self-contained HTML page of a validation: every expectation, its outcome, what GX observed, where it is defined.

No script and no external asset, so it opens the same from the MLflow UI's artifact view (an iframe about
as wide as half a screen), from the snapshot folder, or attached to a ticket. Three columns only: the
outcome, the expectation (its type, its arguments as GX's own sentence, where it is defined) and what GX
observed, passed expectations included. Failures come first, errors before warnings.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

_STATUS_COLOURS = {"passed": "#1a7f37", "warned": "#9a6700", "failed": "#cf222e"}
#: Keys of an expectation's kwargs that are GX's plumbing, not the expectation's arguments.
_PLUMBING = ("batch_id", "result_format", "include_config", "catch_exceptions")
#: How many members of a value set the sentence shows; the rest are counted.
SHOWN_VALUES = 12
#: Characters of one shown value (a long string, a list) before it is cut.
VALUE_CHARS = 80
_PLACEHOLDER = re.compile(r"\$([_a-zA-Z][_a-zA-Z0-9]*)")
_VALUE_SET_MEMBER = re.compile(r"v__(\d+)")

_STYLE = """
body { font: 13px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 8px; color: #1f2328; }
h1 { font-size: 16px; margin: 0 0 4px; } p { margin: 4px 0; } code { font-size: 12px; }
.status { color: #fff; padding: 1px 8px; border-radius: 9px; font-size: 12px; vertical-align: middle; }
.hint, .where, .sev { color: #57606a; font-size: 12px; }
table { border-collapse: collapse; width: 100%; table-layout: fixed; margin-top: 8px; }
th, td { border-top: 1px solid #d0d7de; padding: 4px 6px; text-align: left; vertical-align: top;
  overflow-wrap: anywhere; }
th { background: #f6f8fa; font-weight: 600; } col.outcome { width: 6.5em; } col.observed { width: 34%; }
tr.fail-error { background: #ffebe9; } tr.fail-warn { background: #fff8c5; }
.kind { font-weight: 600; } .args code, .observed code { background: #eff1f3; padding: 0 3px; border-radius: 3px; }
ul.notes { margin: 4px 0; padding-left: 18px; }
"""


def render_report(verdict: dict[str, Any], result: dict[str, Any], *, title: str) -> str:
    """The page for ``verdict`` (``Verdict.to_dict()``) and GX's full ``result`` (its JSON dict)."""
    items = sorted(result.get("results", []), key=_order)
    colour = _STATUS_COLOURS.get(verdict["status"], "#57606a")
    counts = (
        f"{verdict['evaluated']} expectation(s) on {verdict['row_count']:,} rows: "
        f"{verdict['failed_errors']} error(s), {verdict['failed_warnings']} warning(s)"
    )
    notes = "".join(f"<li>{_e(note)}</li>" for note in verdict.get("notes") or [])
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title><style>{_STYLE}</style></head><body>
<h1>{_e(title)} <span class="status" style="background: {colour}">{_e(verdict["status"].upper())}</span></h1>
<p>Suite <code>{_e(verdict["suite"])}</code> ({_e(verdict["suite_file"])}): {_e(counts)}.</p>
{f'<ul class="notes">{notes}</ul>' if notes else ""}
<p class="hint">A failed <b>error</b> expectation stops the run; a failed <b>warn</b> expectation is recorded.
Fix the data, or edit the expectation where it says it is defined.</p>
<table><colgroup><col class="outcome"><col><col class="observed"></colgroup>
<thead><tr><th>outcome</th><th>expectation</th><th>observed</th></tr></thead>
<tbody>
{"".join(_row(item) for item in items)}</tbody></table>
</body></html>
"""


def _order(item: dict[str, Any]) -> int:
    """Failed errors first, then failed warnings, then the passed; the sort is stable (suite order in each)."""
    if item.get("success"):
        return 2
    return 0 if _severity(item) == "error" else 1


def _severity(item: dict[str, Any]) -> str:
    return str(((item.get("expectation_config") or {}).get("meta") or {}).get("severity", "error"))


def _row(item: dict[str, Any]) -> str:
    config = item.get("expectation_config") or {}
    meta = config.get("meta") or {}
    severity = _severity(item)
    success = bool(item.get("success"))
    css = "" if success else f' class="fail-{_e(severity)}"'
    outcome = f'{"passed" if success else "FAILED"}<div class="sev">{_e(severity)}</div>'
    where = f'<div class="where">defined at {_e(str(meta["source"]))}</div>' if meta.get("source") else ""
    described = (
        f'<div class="kind"><code>{_e(str(config.get("type", "")))}</code></div>'
        f'<div class="args">{arguments_html(config)}</div>{where}'
    )
    return f'<tr{css}><td>{outcome}</td><td>{described}</td><td class="observed">{observed_html(item)}</td></tr>\n'


def arguments_html(config: dict[str, Any]) -> str:
    """The expectation's arguments as GX's own sentence (its prescriptive rendering), values in ``<code>``.

    Falls back to ``name value`` pairs when the configuration carries no rendering (an expectation GX
    could not render, a result written before the report rendered them).
    """
    for content in config.get("rendered_content") or []:
        value = content.get("value") or {}
        if content.get("name") == "atomic.prescriptive.summary" and isinstance(value.get("template"), str):
            return _fill(value["template"], value.get("params") or {})
    kwargs = {k: v for k, v in (config.get("kwargs") or {}).items() if k not in _PLUMBING and v is not None}
    return " · ".join(f"{_e(key)} <code>{_e(_show(value))}</code>" for key, value in kwargs.items())


def _fill(template: str, params: dict[str, Any]) -> str:
    """GX's ``$name`` template with each parameter's value, escaped; a long value set is cut and counted."""
    members = sum(1 for name in params if _VALUE_SET_MEMBER.fullmatch(name))

    def one(name: str) -> str:
        if name not in params:
            return _e(f"${name}")
        member = _VALUE_SET_MEMBER.fullmatch(name)
        if member and int(member.group(1)) >= SHOWN_VALUES:
            return f"… (+{members - SHOWN_VALUES} more)" if int(member.group(1)) == SHOWN_VALUES else ""
        param = params[name]
        value = param.get("value") if isinstance(param, dict) else param
        return f"<code>{_e(_show(value))}</code>"

    # split() with one group alternates text and placeholder names: escape the text, fill the names. The
    # sentence is tidied (the spaces around a value left out) with each value a token, so that a value is
    # shown as it ran: a regex "^a .b  c$" keeps its spaces.
    pieces = _PLACEHOLDER.split(template)
    values = [one(piece) for piece in pieces[1::2]]
    text = "".join(f"\x00{i // 2}\x00" if i % 2 else _e(piece.replace("\x00", "")) for i, piece in enumerate(pieces))
    text = re.sub(
        r" {2,}", " ", re.sub(r" ?\x00(\d+)\x00", lambda m: m.group(0) if values[int(m.group(1))] else "", text)
    )
    return re.sub(r"\x00(\d+)\x00", lambda m: values[int(m.group(1))], text.replace(" .", "."))


def observed_html(item: dict[str, Any]) -> str:
    """What GX observed: its ``observed_value``, or how many of the rows it checked were unexpected.

    A failure adds a sample of the unexpected values; an expectation that could not run says why; one that ran
    on a sample of the rows (:mod:`airflow_ml.validation.partitioned`) says how many.
    """
    details = item.get("result") or {}
    error = exception_message(item.get("exception_info"))
    if error:
        return f"could not run: {_e(error)}"
    parts = []
    if details.get("observed_value") is not None:
        parts.append(f"<code>{_e(_show(details['observed_value']))}</code>")
    if details.get("unexpected_count") is not None:
        count, rows = int(details["unexpected_count"]), int(details.get("element_count") or 0)
        percent = details.get("unexpected_percent")
        share = f" ({percent:.2f}%)" if count and isinstance(percent, (int, float)) else ""
        parts.append(f"{count:,} unexpected{share} of {rows:,} rows")
        missing = details.get("missing_count")
        if missing:
            parts.append(f"{int(missing):,} null skipped")
    sampled = item.get("airflow_ml_sampled")  # a check of a partitioned validation that ran on a sample
    if isinstance(sampled, dict):
        parts.append(f"on a seeded sample of {int(sampled['rows']):,} of {int(sampled['of']):,} rows")
    sample = details.get("partial_unexpected_list") or []
    if not item.get("success") and any(v is not None for v in sample):  # a null check's sample is nulls only
        parts.append("e.g. " + ", ".join(f"<code>{_e(_show(v))}</code>" for v in sample[:10]))
    return "<br>".join(parts) or "—"


def exception_message(info: Any) -> str | None:
    """The first exception message of a result: GX 1.x nests exception info per metric, older results are flat."""
    if not isinstance(info, dict) or not info:
        return None
    entries = [info] if "raised_exception" in info else [v for v in info.values() if isinstance(v, dict)]
    for entry in entries:
        if entry.get("raised_exception"):
            return str(entry.get("exception_message") or "unknown error")
    return None


def _show(value: Any) -> str:
    """One value as it ran, cut to ``VALUE_CHARS``: every digit of a number (no rounding, no separators)."""
    if isinstance(value, bool) or value is None:
        text = json.dumps(value)
    elif isinstance(value, int):
        text = str(int(value))
    elif isinstance(value, float):  # numpy's too (repr(np.float64(7.0)) would say so); GX makes 600 a float
        number = float(value)
        text = str(int(number)) if number.is_integer() and abs(number) < 1e16 else repr(number)
    elif isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= VALUE_CHARS else text[: VALUE_CHARS - 1] + "…"


def _e(text: str) -> str:
    return html.escape(text, quote=True)
