"""Shadow promotion's live comparison: the challenger in shadow against the champion, on the same live rows.

The monitor joins the labels that arrived to both prediction logs (``predictions/`` of the champion and
``predictions_shadow/`` of the challenger) on the same ``prediction_id``, and hands the joined rows here.
:func:`compare_shadow` scores both models on those rows, computes the improvement from the paired per-row
losses, bootstraps it over days (rows of one day share their weather, events and traffic, so resampling
rows would claim more certainty than the data hold), and decides, in this order:

1. ``min_evidence``: at least ``min_labels`` labelled rows and ``min_days`` days;
2. ``min_improvement``: the challenger is better than the champion by the relative threshold;
3. ``bootstrap``: the interval of the improvement excludes zero;
4. ``max_slice_regression``: no judged slice is worse than the champion by more than the limit.

The first rule that fails keeps the champion and is named in the verdict; when all pass, the verdict says
promote, and :func:`airflow_ml.ml.shadow_promotion.promote_shadow` moves ``champion``.

Plain Python: numpy and pandas are imported when a comparison runs, so importing this module stays cheap.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

from airflow_ml.ml.gate.records import SliceResult
from airflow_ml.ml.steps.step_settings import ShadowSettings

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

#: The columns of the joined live rows, unless the caller names others (:class:`ShadowColumns`).
PREDICTION_ID, DAY, LABEL, CHAMPION, CHALLENGER = "prediction_id", "day", "label", "champion", "challenger"
#: Metrics whose score follows from per-row losses, and the loss of each (``r2`` compares squared errors).
_ROW_LOSS = {"rmse": "squared", "r2": "squared", "mae": "absolute", "mape": "relative", "logloss": "logloss"}
#: The rules in the order they are applied; ``passed`` when the challenger is promoted.
RULES = ("min_evidence", "min_improvement", "bootstrap", "max_slice_regression", "passed")


@dataclass(frozen=True)
class ShadowColumns:
    """The names of the joined frame's columns: the prediction's id, its day, the label, both predictions."""

    prediction_id: str = PREDICTION_ID
    day: str = DAY
    label: str = LABEL
    champion: str = CHAMPION
    challenger: str = CHALLENGER


@dataclass(frozen=True)
class ShadowVerdict:
    """What the live comparison decided, and the figures behind it.

    ``improvement`` is relative to the champion's live score, positive when the challenger is better;
    ``interval`` is its bootstrap interval over days (None before there is enough evidence).
    """

    promote: bool
    reason: str
    rule: str
    metric: str
    labels: int
    days: int
    min_labels: int
    min_days: int
    champion_score: float | None = None
    challenger_score: float | None = None
    improvement: float | None = None
    min_improvement: float = 0.0
    interval: tuple[float, float] | None = None
    confidence: float = 0.95
    resamples: int = 0
    seed: int = 0
    slices: tuple[SliceResult, ...] = ()
    max_slice_regression: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form (the slices as dicts)."""
        data = asdict(self)
        data["interval"] = list(self.interval) if self.interval is not None else None
        data["slices"] = [asdict(s) for s in self.slices]
        return data


def compare_shadow(
    rows: pd.DataFrame,
    metric: str,
    settings: ShadowSettings,
    *,
    columns: ShadowColumns | None = None,
) -> ShadowVerdict:
    """Compare the challenger in shadow with the champion on the same labelled live rows, and decide.

    Args:
        rows: One row per prediction id that both models scored and whose label arrived: its id, its day,
            the label, the champion's and the challenger's prediction, and every column the slices name.
            Rows without a label are left out.
        metric: A metric of :data:`airflow_ml.ml.metrics.DIRECTIONS` (the template's).
        settings: The thresholds and the bootstrap's resamples, confidence and seed.
        columns: The column names, when they differ from :class:`ShadowColumns`' defaults.

    Returns:
        The verdict: promote or not, why (the rule that decided, with its figures), and the figures.

    Raises:
        ValueError: for an unknown metric, a missing column (named, with the columns the frame has), a
            prediction id that appears twice, or a slice column that is not in ``rows``.
    """
    from airflow_ml.ml.gate.slices import evaluate_slices
    from airflow_ml.ml.metrics import DIRECTIONS

    names = columns or ShadowColumns()
    if metric not in DIRECTIONS:
        raise ValueError(f"unknown metric {metric!r} for the shadow comparison; choose from {sorted(DIRECTIONS)}")
    _check_columns(rows, names, settings.slices)
    labelled = rows[rows[names.label].notna()]
    days = labelled[names.day].nunique()
    verdict = _verdict_maker(metric, settings, len(labelled), days)
    short = _short_of_evidence(len(labelled), days, settings)
    if short:
        return verdict(False, f"not enough live evidence yet: {short}; champion kept", "min_evidence")
    y = labelled[names.label].to_numpy(dtype="float64")
    champion = labelled[names.champion].to_numpy(dtype="float64")
    challenger = labelled[names.challenger].to_numpy(dtype="float64")
    day_codes = labelled[names.day].astype(str).factorize(sort=True)[0]
    champion_score, challenger_score, draws = _improvements(metric, y, champion, challenger, day_codes, settings)
    improvement = _relative(metric, champion_score, challenger_score)
    low, high = _interval(improvement, draws, settings.confidence, days)
    figures = {
        "champion_score": champion_score,
        "challenger_score": challenger_score,
        "improvement": improvement,
        "interval": (low, high),
    }
    shown = f"{metric} {challenger_score:.4g} vs {champion_score:.4g}, {improvement:+.1%}"
    ci = f"{settings.confidence:.0%} CI over {days} days [{low:+.1%}, {high:+.1%}]"
    if not improvement >= settings.min_improvement:
        reason = f"challenger {shown} on {len(labelled)} live rows, required {settings.min_improvement:+.1%}"
        return verdict(False, f"{reason}; champion kept", "min_improvement", **figures)
    if not low > 0:
        return verdict(
            False, f"improvement {improvement:+.1%} with {ci} includes 0; champion kept", "bootstrap", **figures
        )
    slices = evaluate_slices(
        metric,
        y,
        challenger,
        champion,
        {str(s["column"]): labelled[str(s["column"])] for s in settings.slices},
        settings.slices,
        max_regression=settings.max_slice_regression,
        min_rows=settings.min_slice_rows,
    )
    figures["slices"] = slices
    breached = [s for s in slices if s.breached]
    if breached:
        worst = ", ".join(f"{s.name} {s.regression:+.1%} ({s.rows} rows)" for s in breached)
        limit = settings.max_slice_regression
        reason = f"challenger better overall ({shown}) but worse on slice {worst} (max {limit:.1%}); champion kept"
        return verdict(False, reason, "max_slice_regression", **figures)
    needed = f"required {settings.min_improvement:+.1%}"
    reason = f"challenger {shown} on {len(labelled)} live rows over {days} days, {ci} ({needed})"
    return verdict(True, reason, "passed", **figures)


def _interval(improvement: float, draws: np.ndarray, confidence: float, days: int) -> tuple[float, float]:
    """The percentile interval of the day resamples, widened for the few days a window holds.

    With ``D`` days the bootstrap's variance falls short by ``(D - 1) / D``, and a quantile of Student's t
    with ``D - 1`` degrees of freedom fits the spread of a mean of ``D`` days better than the normal one; the
    interval's distances from the observed improvement are scaled by both. Simulated with equally good
    models (tests/unit/monitoring/test_shadow_compare.py), the plain percentile interval excluded zero on
    one side in 6% of the seeds instead of 2.5%; widened, in about 3.5%.
    """
    import numpy as np

    tail = (1 - confidence) / 2
    low, high = (float(v) for v in np.nanquantile(draws, [tail, 1 - tail]))
    z = NormalDist().inv_cdf(1 - tail)
    scale = math.sqrt(days / (days - 1)) * _t_quantile(z, days - 1) / z
    return improvement - (improvement - low) * scale, improvement + (high - improvement) * scale


def _t_quantile(z: float, freedom: int) -> float:
    """Student's t quantile for the normal quantile ``z`` (Cornish-Fisher, two terms; close from 5 degrees)."""
    return z + (z**3 + z) / (4 * freedom) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * freedom**2)


def _check_columns(rows: pd.DataFrame, names: ShadowColumns, slices: Sequence[Mapping[str, Any]]) -> None:
    needed = [*asdict(names).values(), *(str(s["column"]) for s in slices)]
    missing = [c for c in needed if c not in rows.columns]
    if missing:
        raise ValueError(
            f"the joined live rows lack column(s) {missing}; they have {sorted(map(str, rows.columns))} "
            "(join the champion's and the challenger's prediction logs on prediction_id, with the label, the day "
            "and the slice columns)"
        )
    twice = rows[names.prediction_id].duplicated()
    if twice.any():
        first = rows.loc[twice, names.prediction_id].iloc[0]
        raise ValueError(
            f"{int(twice.sum())} prediction id(s) appear more than once in the joined live rows (e.g. {first!r}); "
            "join each prediction once, so both models are compared on the same rows"
        )


def _short_of_evidence(labels: int, days: int, settings: ShadowSettings) -> str:
    """What evidence is missing, naming labels, days or both; empty when there is enough."""
    short = []
    if labels < settings.min_labels:
        short.append(f"{labels} labelled rows of the {settings.min_labels} required (min_labels)")
    if days < max(settings.min_days, 2):
        needed = f"{settings.min_days} required (min_days)" if settings.min_days >= 2 else "2 the interval needs"
        short.append(f"{days} day{'' if days == 1 else 's'} of the {needed}")
    return " and ".join(short)


def _verdict_maker(metric: str, settings: ShadowSettings, labels: int, days: int) -> Any:
    def verdict(promote: bool, reason: str, rule: str, **figures: Any) -> ShadowVerdict:
        return ShadowVerdict(
            promote=promote,
            reason=reason,
            rule=rule,
            metric=metric,
            labels=labels,
            days=days,
            min_labels=settings.min_labels,
            min_days=settings.min_days,
            min_improvement=settings.min_improvement,
            confidence=settings.confidence,
            resamples=settings.resamples,
            seed=settings.seed,
            max_slice_regression=settings.max_slice_regression,
            **figures,
        )

    return verdict


def _improvements(
    metric: str,
    y: np.ndarray,
    champion: np.ndarray,
    challenger: np.ndarray,
    day_codes: np.ndarray,
    settings: ShadowSettings,
) -> tuple[float, float, np.ndarray]:
    """Both live scores and the bootstrap draws of the relative improvement, resampling whole days."""
    import numpy as np

    from airflow_ml.ml.metrics import score

    days = int(day_codes.max()) + 1
    rng = np.random.default_rng(settings.seed)
    # weights[r, d]: how often resample r drew day d (each resample draws as many days as there are).
    weights = np.stack([np.bincount(rng.integers(0, days, days), minlength=days) for _ in range(settings.resamples)])
    if metric not in _ROW_LOSS:  # auc: no per-row loss; score both models on each resample's rows
        day_rows = [np.flatnonzero(day_codes == d) for d in range(days)]
        draws = np.empty(settings.resamples)
        for r, counts in enumerate(weights):
            index = np.concatenate([day_rows[d] for d in np.repeat(np.arange(days), counts)])
            with np.errstate(all="ignore"):
                resampled = score(metric, y[index], champion[index]), score(metric, y[index], challenger[index])
            draws[r] = _relative(metric, *resampled)
        return score(metric, y, champion), score(metric, y, challenger), draws
    keep = y != 0 if _ROW_LOSS[metric] == "relative" else np.ones(len(y), dtype=bool)
    stats = _day_sums(metric, y[keep], champion[keep], challenger[keep], day_codes[keep], days)
    observed = _scores(metric, stats.sum(axis=0, keepdims=True))
    with np.errstate(all="ignore"):
        draws = np.asarray(_relative(metric, *_scores(metric, weights @ stats)), dtype="float64")
    return float(observed[0][0]), float(observed[1][0]), draws


def _day_sums(
    metric: str, y: np.ndarray, champion: np.ndarray, challenger: np.ndarray, day_codes: np.ndarray, days: int
) -> np.ndarray:
    """Per day: the sums of both models' per-row losses, the row count, and the label's sum and sum of squares."""
    import numpy as np

    columns = [_row_loss(metric, y, champion), _row_loss(metric, y, challenger), np.ones_like(y), y, y * y]
    return np.stack([np.bincount(day_codes, weights=c, minlength=days) for c in columns], axis=1)


def _row_loss(metric: str, y: np.ndarray, p: np.ndarray) -> np.ndarray:
    import numpy as np

    kind = _ROW_LOSS[metric]
    if kind == "squared":
        return (y - p) ** 2
    if kind == "absolute":
        return np.abs(y - p)
    if kind == "relative":
        return np.abs((y - p) / y)
    p = np.clip(p, 1e-15, 1 - 1e-15)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


def _scores(metric: str, sums: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both models' scores from summed day statistics (one row per resample)."""
    import numpy as np

    champion, challenger, rows, total, squares = sums.T
    with np.errstate(all="ignore"):
        means = champion / rows, challenger / rows
        if metric == "rmse":
            return np.sqrt(means[0]), np.sqrt(means[1])
        if metric == "r2":
            spread = squares - total * total / rows
            return 1 - champion / spread, 1 - challenger / spread
    return means


def _relative(metric: Any, champion: Any, challenger: Any) -> Any:
    """The challenger's gain over the champion relative to the champion's score; positive is better."""
    from airflow_ml.ml.metrics import DIRECTIONS

    gain = champion - challenger if DIRECTIONS[metric] == "minimize" else challenger - champion
    if isinstance(champion, float):
        return gain / abs(champion) if champion != 0 and math.isfinite(champion) else math.nan
    return gain / abs(champion)
