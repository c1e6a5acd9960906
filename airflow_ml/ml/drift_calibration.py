"""Drift judged against each city's own history, with false discoveries controlled across the fleet.

Each run records, per column and statistic, the drift between the city's previous snapshot and this one
(:mod:`airflow_ml.ml.drift_history`). Today's value becomes a p-value against that city's own history of the
same statistic, so a small city (noisy statistics) and a large one (tiny ones) alarm at the same rate:

- the empirical p-value ``(1 + #{history >= today}) / (1 + n)``;
- beyond the history's reach (fewer than :data:`TAIL_EXCEEDANCES` past values at or above today's), a tail
  fitted to the history: a gamma distribution by its moments on the statistic's chi-square-like scale (PSI as
  it is, the JS distance and the change of missing rate squared), whose survival function gives the p-value.
  An empirical p-value alone is never below ``1 / (n + 1)``, which no correction over a fleet's thousands of
  tests would ever let through.

With fewer than ``min_history`` past values the column is not calibrated: the fixed thresholds decide, and the
record says so (``basis: fixed_thresholds``). A seasonal column is compared with the past values of the same
season (``basis: season``) when there are ``min_history`` of them, else with its whole history.

The p-values of every (city, column, statistic) of a template are adjusted together with Benjamini-Yekutieli
(valid under any dependence between the tests), and a column is flagged when one of its q-values is at most
``q``. A run stops on the label (flagged, or above its fixed ``error`` limit when not calibrated), on a
feature not yet calibrated that breaches its fixed ``error`` limit, or on ``min_flagged`` flagged features.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Below this many past values at or above today's, the fitted tail gives the p-value.
TAIL_EXCEEDANCES = 5
#: The tail is fitted only with this many past values at least (fewer: the empirical p-value).
MIN_TAIL_FIT = 5
_SQUARED = frozenset({"js_distance", "missing_rate_change"})
CALIBRATED = ("history", "season")
#: What stops a run on its own, by kind.
_ALONE = {"label": "the label", "prediction": "the champion's predictions"}


@dataclass(frozen=True)
class CalibrationRules:
    """The ``drift.calibration`` section of a template, as the drift step uses it.

    Attributes:
        enabled: Record the history and judge drift against it.
        q: The false discovery rate over the template's (city, column, statistic) tests.
        min_history: Past values a column needs before it is judged against its history.
        min_flagged: Flagged features that stop a run (the label stops it alone).
        seasonal: Columns compared with the same season of their history.
        season: What a season is: ``month`` (of the snapshot's last day).
    """

    enabled: bool = True
    q: float = 0.05
    min_history: int = 20
    min_flagged: int = 2
    seasonal: tuple[str, ...] = ()
    season: str = "month"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> CalibrationRules:
        """The rules from ``DriftSettings.calibration`` (an empty mapping: the defaults)."""
        values = dict(data or {})
        values["seasonal"] = tuple(values.get("seasonal") or ())
        return cls(**values)


def season_of(partitions: Sequence[str], season: str = "month") -> str | None:
    """The season of a snapshot: the month (``"03"``) of its last partition day; None without partitions."""
    if not partitions or season != "month":
        return None
    try:
        return f"{dt.date.fromisoformat(max(partitions)[:10]).month:02d}"
    except ValueError:
        return None


def p_value(value: float, history: Sequence[float] | np.ndarray, statistic: str) -> tuple[float, str]:
    """Today's ``value`` against ``history`` (past values of the same statistic): the p-value and its method.

    Returns:
        ``(p, "empirical")`` or ``(p, "gamma_tail")`` (see the module's docstring).
    """
    past = np.asarray(history, dtype=float)
    past = past[np.isfinite(past)]
    n = past.size
    exceed = int(np.sum(past >= value))
    empirical = (1 + exceed) / (1 + n)
    if exceed >= TAIL_EXCEEDANCES or n < MIN_TAIL_FIT:
        return float(empirical), "empirical"
    tail = _gamma_tail(_scale(np.array([value]), statistic)[0], _scale(past, statistic))
    if tail is None:
        return float(empirical), "empirical"
    return float(min(empirical, tail)), "gamma_tail"


def _scale(values: np.ndarray, statistic: str) -> np.ndarray:
    return np.square(values) if statistic in _SQUARED else values


def _gamma_tail(value: float, past: np.ndarray) -> float | None:
    """P(a new value >= ``value``) when the past and the new value are gamma with one shape and one scale.

    The shape comes from the past values' (approximate) maximum likelihood; the scale is not estimated but
    integrated out: the new value over the past mean is then F-distributed with ``2k`` and ``2nk`` degrees of
    freedom, so a short history widens the tail instead of pretending to know it.
    """
    from scipy.stats import f

    positive = past[past > 0]
    if positive.size < MIN_TAIL_FIT or value <= 0:
        return None
    mean = float(positive.mean())
    s = math.log(mean) - float(np.log(positive).mean())
    if s <= 1e-12:  # a constant history: no spread to measure a tail with
        return None
    n = positive.size
    # Minka's approximation of the maximum-likelihood shape, with its small-sample bias taken off (it
    # overstates the shape, hence thins the tail, on short histories).
    shape = (3 - s + math.sqrt((s - 3) ** 2 + 24 * s)) / (12 * s)
    shape = max((n - 3) / n * shape + 2 / (3 * n), 1e-3)
    return float(f.sf(value / mean, 2 * shape, 2 * shape * n))


def calibrate(
    today: Iterable[Mapping[str, Any]],
    history: Any,
    rules: CalibrationRules,
    *,
    season: str | None,
) -> list[dict[str, Any]]:
    """Each of ``today``'s statistics against the city's own history.

    Args:
        today: ``{"column", "kind", "statistic", "value"}`` per statistic (value None: not computed).
        history: The city's past rows (a frame with ``column``, ``statistic``, ``value``, ``season``), this
            snapshot's own rows left out.
        rules: The calibration rules.
        season: This snapshot's season (see :func:`season_of`).

    Returns:
        One dict per statistic: the input keys and ``p_value`` (None when not calibrated), ``method``,
        ``basis`` (``history``, ``season`` or ``fixed_thresholds``), ``n_history``, ``season`` (when compared
        within it) and ``note``.
    """
    grouped = _grouped(history)
    seasonal = set(rules.seasonal)
    out = []
    for check in today:
        column, statistic, value = check["column"], check["statistic"], check.get("value")
        past, seasons = grouped.get((column, statistic), (np.empty(0), np.empty(0, dtype=object)))
        entry: dict[str, Any] = {**check, "p_value": None, "method": None, "season": None, "n_history": len(past)}
        if column in seasonal and season is not None:
            same = past[seasons == season]
            if same.size >= rules.min_history:
                past = same
                entry.update(season=season, n_history=int(same.size))
                entry["note"] = f"seasonal: compared with the {same.size} past value(s) of month {season}"
            else:
                entry["note"] = (
                    f"seasonal, but only {same.size} past value(s) of month {season} (< min_history "
                    f"{rules.min_history}): compared with the whole history"
                )
        if value is None or not math.isfinite(float(value)):
            entry.update(basis="fixed_thresholds", note="no value today (first snapshot, or a column missing)")
        elif past.size < rules.min_history:
            entry.update(
                basis="fixed_thresholds",
                note=f"{past.size} past value(s) < drift.calibration.min_history {rules.min_history}: the fixed "
                "thresholds apply",
            )
        else:
            p, method = p_value(float(value), past, statistic)
            entry.update(p_value=p, method=method, basis="season" if entry["season"] else "history")
        entry.setdefault("note", "")
        out.append(entry)
    return out


def _grouped(history: Any) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]:
    if history is None or len(history) == 0:
        return {}
    frame = history[history["value"].notna()]
    groups = {}
    for (column, statistic), rows in frame.groupby(["column", "statistic"], sort=False):
        groups[(str(column), str(statistic))] = (
            rows["value"].to_numpy(dtype=float),
            rows["season"].astype(object).to_numpy(),
        )
    return groups


def adjust(p_values: Sequence[float]) -> np.ndarray:
    """Benjamini-Yekutieli q-values of ``p_values`` (valid under any dependence); empty in, empty out."""
    from scipy.stats import false_discovery_control

    ps = np.asarray(p_values, dtype=float)
    if ps.size == 0:
        return ps
    return np.asarray(false_discovery_control(ps, method="by"), dtype=float)


def with_fleet(calibrated: list[dict[str, Any]], fleet_p_values: Sequence[float]) -> list[dict[str, Any]]:
    """``calibrated`` with ``q_value``: its p-values adjusted together with the fleet's latest ones."""
    own = [i for i, c in enumerate(calibrated) if c["p_value"] is not None]
    qs = adjust([calibrated[i]["p_value"] for i in own] + list(fleet_p_values))
    out = [{**c, "q_value": None} for c in calibrated]
    for i, q in zip(own, qs, strict=False):
        out[i]["q_value"] = float(q)
    return out


@dataclass(frozen=True)
class StopDecision:
    """Whether drift stops the run, and why.

    Attributes:
        stop: Whether the run stops before training.
        reasons: One line per cause (the label, a feature over its fixed limit, the flagged features).
        flagged: Per flagged column, its smallest q-value.
    """

    stop: bool
    reasons: list[str]
    flagged: dict[str, float]


def decide(
    calibrated: Sequence[Mapping[str, Any]],
    fixed_checks: Sequence[Mapping[str, Any]],
    rules: CalibrationRules,
) -> StopDecision:
    """The stop rule: the label or the champion's predictions, or ``min_flagged`` flagged features.

    The label and the predictions stop a run alone: flagged after the adjustment, or, while their history is
    too short to judge, above their fixed ``error`` limit against the champion's data. A feature not yet
    calibrated that breaches its fixed ``error`` limit stops the run too (as before calibration).

    Args:
        calibrated: :func:`with_fleet`'s entries (with ``q_value``).
        fixed_checks: The champion comparison's checks (``DriftCheck.to_dict()``), empty without a champion.
        rules: The calibration rules (``q``, ``min_flagged``).
    """
    flagged: dict[str, float] = {}
    calibrated_columns = set()
    reasons = []
    for entry in calibrated:
        if entry["basis"] not in CALIBRATED:
            continue
        calibrated_columns.add(entry["column"])
        q = entry.get("q_value")
        if q is None or q > rules.q:
            continue
        if entry["kind"] in _ALONE:
            reasons.append(
                f"{_ALONE[entry['kind']]} drifted against the city's own history: {entry['statistic']} q={q:.3g} "
                f"<= q {rules.q:g}"
            )
        else:
            flagged[entry["column"]] = min(q, flagged.get(entry["column"], math.inf))
    for check in fixed_checks:
        if check.get("severity") != "error" or check["column"] in calibrated_columns:
            continue
        what = _ALONE.get(check["kind"], check["column"])
        reasons.append(
            f"{what}: {check['statistic']} {check['value']:.4g} > error {check['error']:g} against the champion's "
            "data (fixed threshold: its history is shorter than drift.calibration.min_history)"
        )
    if len(flagged) >= rules.min_flagged:
        shown = ", ".join(f"{column} (q={q:.3g})" for column, q in sorted(flagged.items(), key=lambda kv: kv[1]))
        reasons.append(
            f"{len(flagged)} feature(s) flagged after the fleet's adjustment (>= drift.calibration.min_flagged "
            f"{rules.min_flagged}): {shown}"
        )
    return StopDecision(stop=bool(reasons), reasons=reasons, flagged=flagged)
