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
(squared first for the JS distance and the missing-rate change). Normalised values of both compare modes
(``new_rows``, ``whole_snapshot``: a small city switches between them) are one distribution and are pooled;
raw values are judged only against past values of the same mode, where the mixture lives. What remains is the
city's own dispersion, which the history measures. The approximation needs moderate counts per bin or level
(see docs/guides/drift.md, "Where the chi-square stops"). Past values recorded without their counts or
overlap are judged raw while fewer than ``min_history`` carry them (``scale: raw``); then only those that do
(``scale: rows``).

**The p-value.**

- the empirical p-value ``(1 + #{history >= today}) / (1 + n)``;
- beyond the history's reach (fewer than ``TAIL_EXCEEDANCES`` past values at or above today's), a gamma tail
  fitted to the history, whose **shape uncertainty is integrated out**: the scale is integrated
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

from airflow_ml.ml.drift_tail import effective_rows, p_value

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
        mode: How today's rows were chosen (``new_rows``, ``whole_snapshot``). Normalised values of every mode
            are pooled; raw values are judged only against past values of the same mode (or, while those are
            fewer than ``min_history``, with the past values recorded without a mode too).

    Returns:
        One dict per statistic: the input keys and ``p_value`` (None when not calibrated), ``method``,
        ``basis`` (``history``, ``season`` or ``fixed_thresholds``), ``scale`` (``rows``: normalised by the
        effective sample size; ``raw``), ``n_history``, ``season`` (when compared within it) and ``note``.
    """
    grouped = _grouped(history)
    empty = (np.empty(0), np.empty(0, dtype=object), np.empty(0), np.empty(0, dtype=object))
    out = []
    for check in today:
        column, statistic, value = check["column"], check["statistic"], check.get("value")
        past, seasons, sizes, modes = grouped.get((column, statistic), empty)
        recorded = past.size
        if mode is not None:  # a row without a mode predates the overlap: its size would be the independent one
            sizes = np.where([isinstance(m, str) for m in modes], sizes, np.nan)
        entry: dict[str, Any] = {**check, "p_value": None, "method": None, "season": None, "scale": None}
        # No overlap_n key: independent sides; a key holding None: an overlap that could not be told.
        n_eff = effective_rows(check.get("reference_n"), check.get("current_n"), check.get("overlap_n", 0))
        counted = np.isfinite(sizes)
        judged = _within_season(column, season, seasons[counted], rules) if n_eff is not None else None
        if judged is not None and judged[0].sum() >= rules.min_history:
            chosen, notes = judged
            past, sizes = past[counted][chosen], sizes[counted][chosen]
            if mode is not None and bool((modes[counted][chosen] != mode).any()):
                notes.append(f"normalised: past values of both compare modes judged with ({mode} today)")
            entry.update(scale="rows")
        else:
            own, notes = _own_mode(modes, mode, rules)
            chosen, season_notes = _within_season(column, season, seasons[own], rules)
            past = past[own][chosen]
            notes += season_notes
            if n_eff is not None:
                notes.append(
                    f"raw values judged: {int(counted.sum())} of {recorded} past value(s) carry their row counts "
                    f"(< min_history {rules.min_history})"
                )
            else:
                notes.append("raw values judged: today's row counts (or the rows both sides share) are unknown")
            entry.update(scale="raw")
        if any(n.startswith("seasonal: ") for n in notes):
            entry["season"] = season
        entry["n_history"] = int(past.size)
        if value is None or not math.isfinite(float(value)):
            entry.update(basis="fixed_thresholds", scale=None)
            notes = ["no value today (first snapshot, or a column missing)"]
        elif past.size < rules.min_history:
            entry.update(basis="fixed_thresholds", scale=None)
            notes.append(
                f"{past.size} past value(s) < drift.calibration.min_history {rules.min_history}: the fixed "
                "thresholds apply"
            )
        else:
            if entry["scale"] == "rows":
                p, method = p_value(float(value), past, statistic, n_eff=n_eff, history_n_eff=sizes)
            else:
                p, method = p_value(float(value), past, statistic)
            entry.update(p_value=p, method=method, basis="season" if entry["season"] else "history")
        entry["note"] = "; ".join(notes)
        out.append(entry)
    return out


def _own_mode(modes: np.ndarray, mode: str | None, rules: CalibrationRules) -> tuple[np.ndarray, list[str]]:
    """The past values raw values are judged with: those of today's compare mode (with those recorded without a
    mode while the mode's own are fewer than ``min_history``); every value when today's mode is unknown."""
    if mode is None:
        return np.ones(modes.size, dtype=bool), []
    same = modes == mode
    legacy = np.array([not isinstance(m, str) for m in modes], dtype=bool)
    if int(same.sum()) < rules.min_history and legacy.any():
        return same | legacy, [f"past values recorded before compare modes were kept are judged with ({mode} today)"]
    if int(same.sum()) < modes.size:
        others = modes.size - int(same.sum())
        return same, [
            f"raw: compared with the {int(same.sum())} past value(s) of compare mode {mode} only ({others} "
            "of other modes left out: raw values of the two modes do not mix)"
        ]
    return same, []


def _within_season(
    column: str, season: str | None, seasons: np.ndarray, rules: CalibrationRules
) -> tuple[np.ndarray, list[str]]:
    """Which past values a seasonal column is judged with: its season's when they are ``min_history``, else all."""
    everything = np.ones(seasons.size, dtype=bool)
    if column not in rules.seasonal or season is None:
        return everything, []
    same = seasons == season
    if int(same.sum()) >= rules.min_history:
        return same, [f"seasonal: compared with the {int(same.sum())} past value(s) of month {season}"]
    return everything, [
        f"seasonal, but only {int(same.sum())} past value(s) of month {season} (< min_history "
        f"{rules.min_history}): compared with the whole history"
    ]


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
    why_fixed: dict[str, str] = {}  # per column not calibrated, the note saying why (history short, or raw in a mode)
    for entry in calibrated:
        if entry["basis"] not in CALIBRATED:
            why_fixed.setdefault(entry["column"], entry.get("note") or "")
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
        why = why_fixed.get(check["column"]) or "its history is shorter than drift.calibration.min_history"
        reasons.append(
            f"{what}: {check['statistic']} {check['value']:.4g} > error {check['error']:g} against the champion's "
            f"data (fixed threshold, not calibrated: {why})"
        )
    if len(flagged) >= rules.min_flagged:
        shown = ", ".join(f"{column} (q={q:.3g})" for column, q in sorted(flagged.items(), key=lambda kv: kv[1]))
        reasons.append(
            f"{len(flagged)} feature(s) flagged after the fleet's adjustment (>= drift.calibration.min_flagged "
            f"{rules.min_flagged}): {shown}"
        )
    return StopDecision(stop=bool(reasons), reasons=reasons, flagged=flagged)
