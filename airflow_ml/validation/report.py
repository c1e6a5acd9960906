"""A self-contained HTML page of a validation: every expectation, its outcome, and where it is defined.

No script and no external asset, so it opens the same from the MLflow UI's artifact view, from the
snapshot folder, or attached to a ticket.
"""

from __future__ import annotations

import html
import json
from typing import Any

_STATUS_COLOURS = {"passed": "#1a7f37", "warned": "#9a6700", "failed": "#cf222e"}


def render_report(verdict: dict[str, Any], result: dict[str, Any], *, title: str) -> str:
    """The page for ``verdict`` (``Verdict.to_dict()``) and GX's full ``result`` (its JSON dict)."""
    rows = [_row(item) for item in result.get("results", [])]
    colour = _STATUS_COLOURS.get(verdict["status"], "#57606a")
    counts = (
        f"{verdict['evaluated']} expectation(s) on {verdict['row_count']} rows: "
        f"{verdict['failed_errors']} error(s), {verdict['failed_warnings']} warning(s)"
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #1f2328; }}
.status {{ color: white; background: {colour}; padding: 2px 10px; border-radius: 10px; }}
table {{ border-collapse: collapse; width: 100%; margin-top: 1em; }}
th, td {{ border: 1px solid #d0d7de; padding: 4px 8px; text-align: left; vertical-align: top; }}
th {{ background: #f6f8fa; }} tr.fail-error {{ background: #ffebe9; }} tr.fail-warn {{ background: #fff8c5; }}
code {{ font-size: 12px; }}
</style></head><body>
<h1>{_e(title)} <span class="status">{_e(verdict["status"].upper())}</span></h1>
<p>Suite <code>{_e(verdict["suite"])}</code> ({_e(verdict["suite_file"])}): {_e(counts)}.</p>
<p>A failed <b>error</b> expectation stops the run; a failed <b>warn</b> expectation is recorded. Fix the data,
or edit the expectation where the last column says it is defined.</p>
<table><thead><tr><th>outcome</th><th>severity</th><th>expectation</th><th>arguments</th><th>observed</th>
<th>unexpected</th><th>sample of unexpected values</th><th>defined at</th></tr></thead>
<tbody>
{"".join(rows)}
</tbody></table>
</body></html>
"""


def _row(item: dict[str, Any]) -> str:
    config = item.get("expectation_config") or {}
    meta = config.get("meta") or {}
    severity = meta.get("severity", "error")
    details = item.get("result") or {}
    success = bool(item.get("success"))
    kwargs = {k: v for k, v in (config.get("kwargs") or {}).items() if k not in ("batch_id", "result_format")}
    unexpected = ""
    if details.get("unexpected_count") is not None:
        unexpected = f"{details['unexpected_count']} ({details.get('unexpected_percent') or 0:.2f}%)"
    css = "" if success else f' class="fail-{_e(severity)}"'
    cells = [
        "passed" if success else "FAILED",
        severity,
        config.get("type", ""),
        json.dumps(kwargs, default=str),
        "" if details.get("observed_value") is None else json.dumps(details["observed_value"], default=str),
        unexpected,
        json.dumps((details.get("partial_unexpected_list") or [])[:10], default=str) if not success else "",
        meta.get("source", ""),
    ]
    return f"<tr{css}>" + "".join(f"<td>{_e(str(cell))}</td>" for cell in cells) + "</tr>\n"


def _e(text: str) -> str:
    return html.escape(text, quote=True)
