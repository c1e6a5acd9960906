"""A trend as a small inline SVG: the holdout score of each version, and the live score where it was measured.

The geometry is plain data (:func:`sparkline`), tested without pixels; :func:`render_sparkline` draws it. Both
lines share one scale, so a live error above the holdout's reads as a line above the other. Colours come from
the page's CSS (``.trend-holdout``, ``.trend-live``), which follows Airflow's light and dark themes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

WIDTH, HEIGHT, PAD = 120, 28, 3


@dataclass(frozen=True)
class Sparkline:
    """Where each point of a trend is drawn, in a box of ``width`` by ``height`` (y grows downwards)."""

    width: int
    height: int
    #: (x, y) of each version's holdout score, in version order.
    holdout: tuple[tuple[float, float], ...]
    #: (x, y) of each version's live score, only for the versions the monitor measured.
    live: tuple[tuple[float, float], ...]
    low: float
    high: float


def sparkline(
    points: Sequence[Mapping[str, Any]], *, width: int = WIDTH, height: int = HEIGHT, pad: int = PAD
) -> Sparkline | None:
    """The geometry of a trend's points (``holdout`` and ``live`` of each, as :class:`~.trends.Trend` gives them).

    Returns:
        None when no point has a value; else one x per version (evenly spaced, a single version centred) and
        one y scale shared by both lines (a flat trend is drawn across the middle).
    """
    values = [p[key] for p in points for key in ("holdout", "live") if p.get(key) is not None]
    if not values:
        return None
    low, high = min(values), max(values)
    step = (width - 2 * pad) / (len(points) - 1) if len(points) > 1 else 0.0

    def x(index: int) -> float:
        return round(pad + index * step if len(points) > 1 else width / 2, 2)

    def y(value: float) -> float:
        if high == low:
            return height / 2
        return round(pad + (high - value) / (high - low) * (height - 2 * pad), 2)

    return Sparkline(
        width=width,
        height=height,
        holdout=tuple((x(i), y(p["holdout"])) for i, p in enumerate(points) if p.get("holdout") is not None),
        live=tuple((x(i), y(p["live"])) for i, p in enumerate(points) if p.get("live") is not None),
        low=low,
        high=high,
    )


def render_sparkline(trend: Mapping[str, Any] | None) -> str:
    """An ``svg.trend`` for a row's ``trend`` (``metric``, ``points``), or a dash when there is nothing to draw.

    Its ``data-versions`` and ``data-live`` count the points of each line; its ``<title>`` lists the values.
    """
    points = (trend or {}).get("points") or []
    line = sparkline(points)
    if line is None:
        why = (trend or {}).get("error") or "no judged version yet"
        return f'<span class="reason trend-none" title="{escape(why, quote=True)}">—</span>'
    metric = str(trend.get("metric") or "") if trend else ""
    listed = "; ".join(
        f"v{p['version']}: {p['holdout']:.4g}" + (f" (live {p['live']:.4g})" if p.get("live") is not None else "")
        for p in points
        if p.get("holdout") is not None
    )
    label = f"{metric} over {len(points)} version(s): {listed}"
    shapes = [f'<polyline class="trend-holdout" points="{_points(line.holdout)}"/>']
    if line.live:
        shapes.append(f'<polyline class="trend-live" points="{_points(line.live)}"/>')
        shapes += [f'<circle class="trend-live" cx="{x}" cy="{y}" r="1.8"/>' for x, y in line.live]
    last_x, last_y = line.holdout[-1] if line.holdout else line.live[-1]
    shapes.append(f'<circle class="trend-holdout" cx="{last_x}" cy="{last_y}" r="2.2"/>')
    return (
        f'<svg class="trend" width="{line.width}" height="{line.height}" viewBox="0 0 {line.width} {line.height}" '
        f'role="img" aria-label="{escape(label, quote=True)}" data-versions="{len(line.holdout)}" '
        f'data-live="{len(line.live)}"><title>{escape(label)}</title>{"".join(shapes)}</svg>'
    )


def _points(coordinates: Sequence[tuple[float, float]]) -> str:
    return " ".join(f"{x:g},{y:g}" for x, y in coordinates)
