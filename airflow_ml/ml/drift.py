"""Drift between two snapshots of a city's data, as pure functions of pandas columns.

The reference is the champion's training snapshot, the current one is this run's. Numeric features are
compared with the population stability index (PSI), categorical ones with the Jensen-Shannon distance,
every column with the change of its missing rate, and the label with PSI (regression) or the JS distance
(binary). Each statistic is held against a ``warn`` and an ``error`` threshold (either may be None: not
checked); a value above ``error`` fails the report, above ``warn`` warns.

Thresholds arrive as plain dicts shaped like the ``drift:`` section of a template (see
``airflow_ml.templates.models.DriftSpec.thresholds``), so this module needs no configuration import.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

#: Share given to an empty bin, so that PSI stays finite (a bin the reference never saw still counts).
PSI_EPSILON = 1e-4
DEFAULT_BINS = 10
Status = Literal["passed", "warned", "failed"]
Severity = Literal["ok", "warn", "error"]


def psi(reference: Any, current: Any, *, bins: int = DEFAULT_BINS, eps: float = PSI_EPSILON) -> float:
    """Population stability index of a numeric column: ``sum((q - p) * ln(q / p))`` over the bins.

    The bins are the reference's quantiles (at most ``bins``, fewer when values repeat), open at both
    ends so that current values beyond the reference's range still count. Missing values are left out:
    the missing-rate check covers them. Empty bins get the share ``eps``.

    Returns:
        A value >= 0 (0 for identical distributions), or NaN when either side has no value.
    """
    ref = _numbers(reference)
    cur = _numbers(current)
    finite = ref[np.isfinite(ref)]
    if finite.size == 0 or cur.size == 0:
        return math.nan
    cuts = np.unique(np.quantile(finite, np.linspace(0.0, 1.0, bins + 1)[1:-1]))
    # Right-closed bins (-inf, c1], (c1, c2], ..., (ck, inf): a value equal to a cut stays in the lower bin.
    p = _shares(_bin_counts(cuts, ref), eps)
    q = _shares(_bin_counts(cuts, cur), eps)
    return float(np.sum((q - p) * np.log(q / p)))


def js_distance(reference: Any, current: Any) -> float:
    """Jensen-Shannon distance (base 2) between the category frequencies of two columns.

    Categories are the union of both sides, so a category the reference never saw counts in full.
    Missing values are left out (see :func:`missing_rate_change`).

    Returns:
        A value in [0, 1]: 0 for identical frequencies, 1 when no category is shared; NaN when either
        side has no value.
    """
    return _js_of_shares(category_shares(reference), category_shares(current))


def category_shares(values: Any) -> pd.Series:
    """Each category's share of a column's non-missing values, the categories as plain objects.

    Plain objects, as :func:`js_distance` compares them: two categorical dtypes with different category lists
    still compare value by value, and ``1 == 1.0`` (an int column that gained a null). A text column is counted
    in its own dtype first (Arrow's count is many times faster than one Python object per row), then only the
    categories become objects: the same shares.
    """
    series = pd.Series(values)
    if isinstance(series.dtype, pd.StringDtype):
        counts = series.value_counts(dropna=True)
        number = counts.to_numpy(dtype="int64")
        return pd.Series(number / number.sum(), index=counts.index.astype(object), name="proportion")
    return series.astype(object).dropna().value_counts(normalize=True)


def _js_of_shares(p: pd.Series, q: pd.Series) -> float:
    if p.empty or q.empty:
        return math.nan
    categories = p.index.union(q.index)
    pv = p.reindex(categories, fill_value=0.0).to_numpy(dtype=float)
    qv = q.reindex(categories, fill_value=0.0).to_numpy(dtype=float)
    m = (pv + qv) / 2
    divergence = (_kl_base2(pv, m) + _kl_base2(qv, m)) / 2
    return float(min(1.0, math.sqrt(max(0.0, divergence))))


def missing_rate_change(reference: Any, current: Any) -> float:
    """Absolute difference of the share of missing values, in [0, 1]; NaN when either side is empty."""
    ref = pd.Series(reference)
    cur = pd.Series(current)
    if ref.empty or cur.empty:
        return math.nan
    return float(abs(cur.isna().mean() - ref.isna().mean()))


@dataclass(frozen=True)
class DriftCheck:
    """One statistic of one column against its thresholds.

    Attributes:
        column: The column compared.
        kind: ``numeric`` or ``categorical`` for features, ``label`` for the target.
        statistic: ``psi``, ``js_distance`` or ``missing_rate_change``.
        value: The statistic, or None when it could not be computed (see ``note``).
        warn: Above this the check warns; None: not checked.
        error: Above this the check fails the report; None: not checked.
        setting: Where the thresholds are configured, e.g. ``drift.psi`` or ``drift.features.distance_km.psi``.
        note: Why a value is missing, or how the column was compared when not as declared.
    """

    column: str
    kind: str
    statistic: str
    value: float | None
    warn: float | None
    error: float | None
    setting: str
    note: str = ""

    @property
    def severity(self) -> Severity:
        """``error`` above the error threshold, ``warn`` above the warn threshold, else ``ok``."""
        if self.value is None:
            return "ok"
        if self.error is not None and self.value > self.error:
            return "error"
        if self.warn is not None and self.value > self.warn:
            return "warn"
        return "ok"

    @property
    def breached(self) -> bool:
        """Whether a threshold is exceeded."""
        return self.severity != "ok"

    @property
    def threshold(self) -> float | None:
        """The threshold exceeded, or None."""
        return {"error": self.error, "warn": self.warn}.get(self.severity)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form, with severity, breached and threshold spelled out."""
        return {
            "column": self.column,
            "kind": self.kind,
            "statistic": self.statistic,
            "value": self.value,
            "threshold": self.threshold,
            "warn": self.warn,
            "error": self.error,
            "severity": self.severity,
            "breached": self.breached,
            "setting": self.setting,
            "note": self.note,
        }


@dataclass(frozen=True)
class DriftReport:
    """Every check of a comparison, its overall status and a readable summary."""

    checks: list[DriftCheck]
    reference_rows: int
    current_rows: int
    reference: str = "the reference snapshot"
    extra: dict[str, Any] = field(default_factory=dict)
    #: What was compared with the reference: the whole snapshot, or its rows since a day.
    current: str = "this snapshot"
    #: Per column compared by JS distance, the (reference, current) shares it was computed from: the drift
    #: chart draws them instead of counting a million rows again. Not part of ``to_dict``.
    shares: Mapping[str, tuple[pd.Series, pd.Series]] = field(default_factory=dict, repr=False, compare=False)

    @property
    def status(self) -> Status:
        """``failed`` when a check breaches its error threshold, ``warned`` for a warn threshold, else ``passed``."""
        severities = {c.severity for c in self.checks}
        if "error" in severities:
            return "failed"
        return "warned" if "warn" in severities else "passed"

    @property
    def breaches(self) -> list[DriftCheck]:
        """The checks above a threshold, errors first."""
        return sorted((c for c in self.checks if c.breached), key=lambda c: c.severity != "error")

    def metrics(self) -> dict[str, float]:
        """``drift.<column>.<statistic>`` for every computed value, to log to MLflow."""
        return {f"drift.{c.column}.{c.statistic}": c.value for c in self.checks if c.value is not None}

    def summary(self) -> str:
        """What a person reads in the task log: the verdict, then one line per breached check."""
        breaches = self.breaches
        errors = sum(c.severity == "error" for c in breaches)
        columns = len({c.column for c in self.checks})
        lines = [
            f"drift {self.status.upper()}: {errors} error(s), {len(breaches) - errors} warning(s) over "
            f"{columns} column(s); {self.current} ({self.current_rows} rows) against {self.reference} "
            f"({self.reference_rows} rows)"
        ]
        for check in breaches:
            lines.append(
                f"  - [{check.severity}] {check.column} ({check.kind}): {check.statistic} {check.value:.4g} > "
                f"{check.severity} threshold {check.threshold:g}; to change it, set "
                f"{check.setting}.{check.severity}"
            )
        lines.extend(f"  - [skipped] {c.column} {c.statistic}: {c.note}" for c in self.checks if c.value is None)
        if breaches:
            lines.append(
                "  thresholds live under 'drift:' in the template (every city) or in a city file (one city); "
                "null turns a check off"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form (``drift.json``)."""
        return {
            "status": self.status,
            "reference": self.reference,
            "current": self.current,
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "breaches": [f"{c.column}.{c.statistic}" for c in self.breaches],
            "checks": [c.to_dict() for c in self.checks],
            **self.extra,
        }


def compare(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    features: Sequence[str],
    categorical: Sequence[str],
    target: str,
    task: str,
    thresholds: Mapping[str, Any],
    bins: int = DEFAULT_BINS,
    reference_name: str = "the reference snapshot",
    current_name: str = "this snapshot",
) -> DriftReport:
    """Compare ``current`` with ``reference`` column by column and hold each statistic against its thresholds.

    Args:
        reference: The rows the champion was trained on.
        current: This run's rows.
        features: Feature columns.
        categorical: The features that are categories (JS distance instead of PSI).
        target: The label; PSI for ``regression``, JS distance for ``binary``.
        task: ``regression`` or ``binary``.
        thresholds: ``{"psi": {"warn": .., "error": ..}, "js_distance": .., "missing_rate_change": ..,
            "label_psi": .., "label_js_distance": .., "features": {column: {statistic: {...}}}}``; a missing
            key or a None threshold is not checked. Per-column entries override the general ones key by key.
        bins: PSI bins (the reference's quantiles).
        reference_name: How the summary names the reference.
        current_name: How the summary names the rows compared with it.
    """
    checks: list[DriftCheck] = []
    shares: dict[str, tuple[pd.Series, pd.Series]] = {}
    categorical_set = set(categorical)
    for column in [*features, target]:
        is_label = column == target
        if is_label:
            kind = "label"
            statistic = "js_distance" if task == "binary" else "psi"
        else:
            kind = "categorical" if column in categorical_set else "numeric"
            statistic = "js_distance" if kind == "categorical" else "psi"
        missing = _missing_note(column, reference, current)
        note = missing
        if not missing and statistic == "psi" and not _is_numeric(reference[column], current[column]):
            statistic, note = "js_distance", "not numeric: compared as categories"
        value: float | None = None
        if not missing:
            if statistic == "psi":
                value = _finite_or_none(psi(reference[column], current[column], bins=bins))
            else:
                shares[column] = (category_shares(reference[column]), category_shares(current[column]))
                value = _finite_or_none(_js_of_shares(*shares[column]))
            if value is None:
                note = "no non-missing value on one side: see missing_rate_change"
        checks.append(_check(column, kind, statistic, value, thresholds, is_label, note))
        rate = None if missing else _finite_or_none(missing_rate_change(reference[column], current[column]))
        checks.append(_check(column, kind, "missing_rate_change", rate, thresholds, is_label, missing))
    return DriftReport(
        checks=checks,
        reference_rows=len(reference),
        current_rows=len(current),
        reference=reference_name,
        current=current_name,
        shares=shares,
    )


def prediction_check(
    reference: Any, current: Any, *, thresholds: Mapping[str, Any], bins: int = DEFAULT_BINS, note: str = ""
) -> DriftCheck:
    """PSI of the champion's predictions on the reference rows against its predictions on the current ones.

    Held against ``thresholds["prediction_psi"]`` (``drift.prediction_psi``); the check is named ``prediction``.
    """
    value = None if reference is None or current is None else _finite_or_none(psi(reference, current, bins=bins))
    limits = dict(thresholds.get("prediction_psi") or {})
    if value is None and not note:
        note = "no prediction on one side"
    return DriftCheck(
        column="prediction",
        kind="prediction",
        statistic="psi",
        value=value,
        warn=limits.get("warn"),
        error=limits.get("error"),
        setting="drift.prediction_psi",
        note=note,
    )


def _check(
    column: str,
    kind: str,
    statistic: str,
    value: float | None,
    thresholds: Mapping[str, Any],
    is_label: bool,
    note: str,
) -> DriftCheck:
    general = f"label_{statistic}" if is_label and statistic != "missing_rate_change" else statistic
    limits = dict(thresholds.get(general) or {})
    setting = f"drift.{general}"
    override = ((thresholds.get("features") or {}).get(column) or {}).get(statistic)
    if override is not None:
        limits.update(override)
        setting = f"drift.features.{column}.{statistic}"
    return DriftCheck(
        column=column,
        kind=kind,
        statistic=statistic,
        value=value,
        warn=limits.get("warn"),
        error=limits.get("error"),
        setting=setting,
        note=note,
    )


def _missing_note(column: str, reference: pd.DataFrame, current: pd.DataFrame) -> str:
    if column not in reference.columns:
        return "not in the reference snapshot (a new column): nothing to compare"
    if column not in current.columns:
        return "not in this snapshot"
    return ""


def _is_numeric(*columns: pd.Series) -> bool:
    return all(pd.api.types.is_numeric_dtype(c) or pd.api.types.is_bool_dtype(c) for c in columns)


def _numbers(values: Any) -> np.ndarray:
    array = pd.Series(values).dropna().to_numpy(dtype=float)
    return array[~np.isnan(array)]


def _bin_counts(cuts: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Values per right-closed bin, as ``np.bincount(np.searchsorted(cuts, values))`` counts them (no NaN in
    ``values``): the values above each cut, one comparison per cut and value, not a binary search per value."""
    above = [values.size, *(np.count_nonzero(values > cut) for cut in cuts), 0]
    return -np.diff(np.asarray(above, dtype=float))


def _shares(counts: np.ndarray, eps: float) -> np.ndarray:
    return np.clip(counts / max(counts.sum(), 1), eps, None)


def _kl_base2(p: np.ndarray, m: np.ndarray) -> float:
    present = p > 0
    return float(np.sum(p[present] * np.log2(p[present] / m[present])))


def _finite_or_none(value: float) -> float | None:
    return None if math.isnan(value) else value
