"""Drift judged against each city's own history, with false discoveries controlled across the fleet.

Each run records, per column and statistic, the drift between the city's previous snapshot and this one and
the number of values each side held (:mod:`airflow_ml.ml.drift_history`). Today's value becomes a p-value
against that city's own history of the same statistic, so a small city (noisy statistics) and a large one
(tiny ones) alarm at the same rate.

**Normalised by the rows compared.** Under no drift a statistic shrinks with the rows it compares: PSI times
the effective sample size ``n_eff`` (:func:`effective_rows`, which counts only the values the two sides do not
share) is close to chi-square with ``bins - 1`` degrees of freedom, the JS distance squared times
``8 ln 2 * n_eff`` to chi-square with ``categories - 1``, and the change of a missing rate squared times
``n_eff`` to ``rate * (1 - rate)`` times chi-square with one. When the rows compared vary from night to night,
the raw statistic is a *scale mixture* of those chi-squares, whose tail is far heavier than any one of them, and
a fleet of thousands of tests alarms every night. Each value is therefore judged as ``statistic * n_eff``
(squared first for the JS distance and the missing-rate change), and only against past values of the same
compare mode (``new_rows`` or ``whole_snapshot``: a small city switches between them). What remains is the
city's own dispersion, which the history measures. The approximation needs moderate counts per bin or level
(see docs/guides/drift.md, "Where the chi-square stops"). Past values recorded without their counts, overlap or
mode are judged raw while fewer than ``min_history`` carry them (``scale: raw``); then only those that do
(``scale: rows``).

**The p-value.**

- the empirical p-value ``(1 + #{history >= today}) / (1 + n)``;
- beyond the history's reach (fewer than :data:`TAIL_EXCEEDANCES` past values at or above today's), a gamma
  tail fitted to the history, whose **shape uncertainty is integrated out**: the scale is integrated
  analytically (today's value over the past mean is F-distributed given the shape) and the shape over its
  posterior on a grid (flat prior on ``log shape``), so a short or irregular history widens the tail instead
  of pretending to know it (an empirical p-value is never below ``1 / (n + 1)``; a plug-in shape thins the
  tail where Benjamini-Yekutieli flags, near ``1e-6``). Not covered: a spread that wavers from night to night
  for other reasons than the rows (log-normal sd 0.2 stays within ``q``; sd 0.3 alarms at about ``2 q``).

With fewer than ``min_history`` past values the fixed thresholds decide (``basis: fixed_thresholds``). A
seasonal column is judged on the same season's past values (``basis: season``) when it has ``min_history``.

The p-values of the template's family (:mod:`airflow_ml.ml.drift_family`: per member city recent enough, its
newest snapshot's) are adjusted together with Benjamini-Yekutieli (valid under any dependence between the
tests), the same way in a city's run and in the nightly review, and a column is flagged when one of its
q-values is at most ``q``. A run stops on the label (flagged, or above its fixed ``error`` limit when not
calibrated), on a feature not yet calibrated that breaches its fixed ``error`` limit, or on ``min_flagged``
flagged features.
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
        max_age_days: A city whose newest drift record is older leaves the fleet's family
            (:mod:`airflow_ml.ml.drift_family`).
    """

    enabled: bool = True
    q: float = 0.05
    min_history: int = 20
    min_flagged: int = 2
    seasonal: tuple[str, ...] = ()
    season: str = "month"
    max_age_days: int = 45  # the spec's DEFAULT_MAX_AGE_DAYS (ml never imports templates); a test keeps them one

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


def effective_rows(reference: Any, current: Any, overlap: Any = 0) -> float | None:
    """``n1 * n2 / (n1 + n2 - 2 m)``, the effective sample size of a two-sample statistic whose sides share ``m``
    values; None when a count is unknown or the sides differ by no value.

    A share's difference between the sides has variance ``pi (1 - pi) (1/n1 + 1/n2 - 2m / (n1 n2))``: the shared
    values cancel. With ``m = 0`` (independent sides) this is the usual ``n1 * n2 / (n1 + n2)``.
    """
    try:
        n1, n2, m = float(reference), float(current), float(overlap)
    except (TypeError, ValueError):
        return None
    if not all(map(math.isfinite, (n1, n2, m))) or n1 <= 0 or n2 <= 0 or m < 0:
        return None
    m = min(m, n1, n2)
    spread = n1 + n2 - 2 * m
    return n1 * n2 / spread if spread > 0 else None


def p_value(
    value: float,
    history: Sequence[float] | np.ndarray,
    statistic: str,
    *,
    n_eff: float | None = None,
    history_n_eff: Sequence[float] | np.ndarray | None = None,
) -> tuple[float, str]:
    """Today's ``value`` against ``history`` (past values of the same statistic): the p-value and its method.

    Args:
        value: Today's statistic.
        history: The past values of the same statistic.
        statistic: ``psi``, ``js_distance`` or ``missing_rate_change`` (the last two are squared).
        n_eff: Today's effective sample size (see :func:`effective_rows`); with ``history_n_eff``, every value
            is judged multiplied by its own (see the module's docstring).
        history_n_eff: One effective sample size per past value.

    Returns:
        ``(p, "empirical")`` or ``(p, "gamma_tail")`` (see the module's docstring).
    """
    past = _scale(np.asarray(history, dtype=float), statistic)
    today = float(_scale(np.array([value], dtype=float), statistic)[0])
    if n_eff is not None and history_n_eff is not None:
        sizes = np.asarray(history_n_eff, dtype=float)
        if sizes.shape != past.shape:
            raise ValueError(f"{sizes.size} effective sample size(s) for {past.size} past value(s)")
        past, today = past * sizes, today * n_eff
    past = past[np.isfinite(past)]
    n = past.size
    exceed = int(np.sum(past >= today))
    empirical = (1 + exceed) / (1 + n)
    if exceed >= TAIL_EXCEEDANCES or n < MIN_TAIL_FIT:
        return float(empirical), "empirical"
    tail = _gamma_tail(today, past)
    if tail is None:
        return float(empirical), "empirical"
    return float(min(empirical, tail)), "gamma_tail"


def _scale(values: np.ndarray, statistic: str) -> np.ndarray:
    return np.square(values) if statistic in _SQUARED else values


#: The gamma shapes the tail averages over: from a tail far heavier than an exponential's to a near-normal one.
_SHAPES = np.exp(np.linspace(math.log(0.05), math.log(500.0), 160))


def _gamma_tail(value: float, past: np.ndarray) -> float | None:
    """P(a new value >= ``value``) when the past and the new value are gamma with one unknown shape and scale.

    Given the shape ``k``, the scale is integrated out (prior ``1 / scale``): the new value over the past mean
    is F-distributed with ``2k`` and ``2nk`` degrees of freedom. The shape is integrated over its posterior on
    :data:`_SHAPES` (flat prior on ``log k``), whose likelihood, the scale integrated out, depends on the past
    only through ``s = log(mean) - mean(log)``: ``-n k s - n lgamma(k) + lgamma(n k) - n k log n``. A short
    or irregular history thus keeps the heavier tails of small shapes in the average.
    """
    from scipy.special import gammaln
    from scipy.stats import f

    positive = past[past > 0]
    if positive.size < MIN_TAIL_FIT or value <= 0:
        return None
    mean = float(positive.mean())
    s = math.log(mean) - float(np.log(positive).mean())
    if s <= 1e-12:  # a constant history: no spread to measure a tail with
        return None
    n = positive.size
    k = _SHAPES
    log_likelihood = -n * k * s - n * gammaln(k) + gammaln(n * k) - n * k * math.log(n)
    weights = np.exp(log_likelihood - log_likelihood.max())
    kept = weights > 1e-12  # shapes the history rules out add nothing but time
    k, weights = k[kept], weights[kept]
    return float(np.sum(weights * f.sf(value / mean, 2 * k, 2 * n * k)) / weights.sum())


def calibrate(
    today: Iterable[Mapping[str, Any]],
    history: Any,
    rules: CalibrationRules,
    *,
    season: str | None,
    mode: str | None = None,
) -> list[dict[str, Any]]:
    """Each of ``today``'s statistics against the city's own history.

    Args:
        today: ``{"column", "kind", "statistic", "value"}`` per statistic (value None: not computed), with
            ``reference_n``, ``current_n`` and ``overlap_n`` (the values each side held, both held) when known.
        history: The city's past rows (a frame with ``column``, ``statistic``, ``value``, ``season`` and, when
            recorded, ``reference_n``, ``current_n``, ``overlap_n`` and ``compare_mode``), this snapshot's own
            rows left out.
        rules: The calibration rules.
        season: This snapshot's season (see :func:`season_of`).
        mode: How today's rows were chosen (``new_rows``, ``whole_snapshot``): only past values of the same mode
            are judged with (and, normalised by their rows, only those), past values without a mode only raw.

    Returns:
        One dict per statistic: the input keys and ``p_value`` (None when not calibrated), ``method``,
        ``basis`` (``history``, ``season`` or ``fixed_thresholds``), ``scale`` (``rows``: normalised by the
        effective sample size; ``raw``), ``n_history``, ``season`` (when compared within it) and ``note``.
    """
    grouped = _grouped(history)
    seasonal = set(rules.seasonal)
    empty = (np.empty(0), np.empty(0, dtype=object), np.empty(0), np.empty(0, dtype=object))
    out = []
    for check in today:
        column, statistic, value = check["column"], check["statistic"], check.get("value")
        past, seasons, sizes, modes = grouped.get((column, statistic), empty)
        notes = []
        if mode is not None:
            same = modes == mode
            legacy = np.array([not isinstance(m, str) for m in modes], dtype=bool)
            if int(same.sum()) < rules.min_history and legacy.any():
                same |= legacy
                notes.append(f"past values recorded before compare modes were kept are judged with ({mode} today)")
            elif int(same.sum()) < past.size:
                notes.append(f"compared with the past values of compare mode {mode} only")
            past, seasons, sizes = past[same], seasons[same], np.where(legacy[same], np.nan, sizes[same])
        entry: dict[str, Any] = {
            **check,
            "p_value": None,
            "method": None,
            "season": None,
            "scale": None,
            "n_history": len(past),
        }
        if column in seasonal and season is not None:
            same = seasons == season
            if int(same.sum()) >= rules.min_history:
                past, sizes = past[same], sizes[same]
                entry.update(season=season, n_history=int(past.size))
                notes.append(f"seasonal: compared with the {past.size} past value(s) of month {season}")
            else:
                notes.append(
                    f"seasonal, but only {int(same.sum())} past value(s) of month {season} (< min_history "
                    f"{rules.min_history}): compared with the whole history"
                )
        if value is None or not math.isfinite(float(value)):
            entry.update(basis="fixed_thresholds")
            notes = ["no value today (first snapshot, or a column missing)"]
        elif past.size < rules.min_history:
            entry.update(basis="fixed_thresholds")
            notes.append(
                f"{past.size} past value(s) < drift.calibration.min_history {rules.min_history}: the fixed "
                "thresholds apply"
            )
        else:
            # No overlap_n key: independent sides; a key holding None: an overlap that could not be told.
            n_eff = effective_rows(check.get("reference_n"), check.get("current_n"), check.get("overlap_n", 0))
            counted = np.isfinite(sizes)
            if n_eff is not None and int(counted.sum()) >= rules.min_history:
                p, method = p_value(float(value), past[counted], statistic, n_eff=n_eff, history_n_eff=sizes[counted])
                entry.update(scale="rows", n_history=int(counted.sum()))
            else:
                p, method = p_value(float(value), past, statistic)
                entry.update(scale="raw")
                notes.append(
                    f"raw values judged: {int(counted.sum())} of {past.size} past value(s) carry their row counts "
                    f"(< min_history {rules.min_history})"
                    if n_eff is not None
                    else "raw values judged: today's row counts (or the rows both sides share) are unknown"
                )
            entry.update(p_value=p, method=method, basis="season" if entry["season"] else "history")
        entry["note"] = "; ".join(notes)
        out.append(entry)
    return out


def _grouped(history: Any) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Per (column, statistic): the past values, their seasons, effective sample sizes (NaN: not recorded) and
    compare modes (None: not recorded)."""
    if history is None or len(history) == 0:
        return {}
    frame = history[history["value"].notna()]
    # Whole columns to numpy once, then sliced per group: iterating the groups of the frame copied every
    # column of every group (90% of a 40-statistic city's calibration).
    values = frame["value"].to_numpy(dtype=float)
    seasons = frame["season"].astype(object).to_numpy()
    # A frame without an overlap column holds independent samples; a history's missing overlap is unknown.
    n1, n2, m = (
        frame[name].to_numpy(dtype=float, na_value=np.nan) if name in frame else np.full(len(frame), default)
        for name, default in (("reference_n", np.nan), ("current_n", np.nan), ("overlap_n", 0.0))
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        spread = n1 + n2 - 2 * np.minimum(m, np.minimum(n1, n2))
        sizes = np.where((n1 > 0) & (n2 > 0) & (m >= 0) & (spread > 0), n1 * n2 / spread, np.nan)
    modes = frame["compare_mode"].astype(object).to_numpy() if "compare_mode" in frame else np.full(len(frame), None)
    positions = frame.groupby(["column", "statistic"], sort=False).indices  # each group's rows, in order
    return {
        (str(column), str(statistic)): (values[rows], seasons[rows], sizes[rows], modes[rows])
        for (column, statistic), rows in positions.items()
    }


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
