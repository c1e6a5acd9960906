"""The promotion gate's rules and decision, as pure functions of scores, intervals and slice results.

This module stays free of numpy so that parsing DAG files may import it; :func:`judge` imports the
numeric parts (:mod:`airflow_ml.ml.bootstrap`, :mod:`airflow_ml.ml.slices`) when it runs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from airflow_ml.ml import naive_baseline as naive
from airflow_ml.ml.naive_baseline import NaiveBaseline, NaiveBaselineResult

Direction = Literal["minimize", "maximize"]


@dataclass(frozen=True)
class GateRules:
    """The thresholds of a city's gate, as plain values (from the template's ``gate:`` and ``split:``).

    Attributes:
        min_improvement: Required gain over the champion (a fraction of its score when relative).
        improvement_mode: ``relative`` or ``absolute``.
        min_holdout_rows: Refuse to decide on a smaller holdout.
        min_quality: At most one bound on the challenger's own score, ``{"max_rmse": 12}`` for a metric
            where lower is better, ``{"min_auc": 0.7}`` for one where higher is; None: no bound.
        bootstrap: ``{"resamples", "confidence", "seed"}`` of the paired bootstrap; None: off.
        slices: ``{"column": ..., "bins": [...] or None}`` per slicing of the holdout.
        max_slice_regression: How much worse (relative) any judged slice may be; None: slices are reported only.
        min_slice_rows: Smaller slices are reported but not judged.
        naive_baseline: The challenger must beat a constant learnt from the training rows; None: off.
    """

    min_improvement: float = 0.0
    improvement_mode: Literal["relative", "absolute"] = "relative"
    min_holdout_rows: int = 1
    min_quality: Mapping[str, float] | None = None
    bootstrap: Mapping[str, Any] | None = None
    slices: Sequence[Mapping[str, Any]] = ()
    max_slice_regression: float | None = None
    min_slice_rows: int = 100
    naive_baseline: NaiveBaseline | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form."""
        data = asdict(self)
        data["min_quality"] = dict(self.min_quality) if self.min_quality else None
        data["bootstrap"] = dict(self.bootstrap) if self.bootstrap else None
        data["slices"] = [dict(s) for s in self.slices]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateRules:
        """The rules from :meth:`to_dict`, or from the template's ``gate:`` rules as the spec dumps them.

        Raises:
            ValueError: naming a key that is no rule, so a rule added to the spec is never silently dropped.
        """
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown gate rule(s) {unknown}; GateRules knows {[f.name for f in fields(cls)]}")
        values = dict(data)
        bound = {k: v for k, v in (values.get("min_quality") or {}).items() if v is not None}
        values["min_quality"] = bound or None
        values["slices"] = tuple(dict(s) for s in values.get("slices") or ())
        raw = values.get("naive_baseline")
        values["naive_baseline"] = NaiveBaseline.from_dict(raw) if isinstance(raw, Mapping) else raw
        return cls(**values)


@dataclass(frozen=True)
class BootstrapResult:
    """Percentile intervals from a paired bootstrap over the holdout rows (the same resamples for both models).

    ``improvement`` is in the unit of ``min_improvement`` (a fraction when relative); positive is better.
    """

    resamples: int
    confidence: float
    seed: int
    challenger: tuple[float, float]
    champion: tuple[float, float] | None = None
    improvement: tuple[float, float] | None = None


@dataclass(frozen=True)
class SliceResult:
    """Both models' scores on one slice of the holdout, e.g. ``pickup_zone=mitte``.

    ``regression`` is how much worse the challenger is, relative to the champion's score (0.12: 12% worse;
    negative: better); None when there is no champion or the metric is undefined on the slice. Only
    ``judged`` slices (enough rows, a regression) can be ``breached``.
    """

    column: str
    value: str
    rows: int
    challenger_score: float | None
    champion_score: float | None
    regression: float | None
    judged: bool
    breached: bool

    @property
    def name(self) -> str:
        """``column=value``."""
        return f"{self.column}={self.value}"


@dataclass(frozen=True)
class GateDecision:
    """What the gate decided and why; recorded as version tags and a JSON artifact.

    ``refused_by`` names the rule that kept the champion (None when the gate promotes): one of
    ``min_holdout_rows``, ``finite_score``, ``min_quality``, ``naive_baseline``, ``better_than_champion``,
    ``min_improvement``, ``bootstrap`` or ``max_slice_regression``.
    """

    promote: bool
    reason: str
    challenger_score: float
    champion_score: float | None
    improvement: float | None
    min_improvement: float
    improvement_mode: str
    direction: str
    holdout_rows: int
    refused_by: str | None = None
    min_holdout_rows: int = 1
    min_quality: dict[str, float] | None = None
    bootstrap: BootstrapResult | None = None
    slices: tuple[SliceResult, ...] = ()
    max_slice_regression: float | None = None
    min_slice_rows: int | None = None
    naive_baseline: NaiveBaselineResult | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form."""
        data = asdict(self)
        data["slices"] = [asdict(s) for s in self.slices]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateDecision:
        """The decision back from :meth:`to_dict` (after a JSON round trip, say); unknown keys are ignored."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        raw = values.get("bootstrap")
        if raw is not None:
            values["bootstrap"] = BootstrapResult(
                resamples=int(raw["resamples"]),
                confidence=float(raw["confidence"]),
                seed=int(raw["seed"]),
                challenger=_pair(raw["challenger"]),
                champion=_pair(raw.get("champion")),
                improvement=_pair(raw.get("improvement")),
            )
        values["slices"] = tuple(SliceResult(**s) for s in values.get("slices") or ())
        values["naive_baseline"] = naive.from_record(values.get("naive_baseline"))
        return cls(**values)


def _pair(value: Any) -> Any:
    return None if value is None else (float(value[0]), float(value[1]))


def quality_bound(min_quality: Mapping[str, float] | None, metric: str, direction: Direction) -> float | None:
    """The bound of ``min_quality`` on ``metric``, checking that its key fits the metric and direction.

    Raises:
        ValueError: when the key names another metric or the wrong side (``min_rmse``), with the right key.
    """
    if not min_quality:
        return None
    expected = f"{'max' if direction == 'minimize' else 'min'}_{metric}"
    if list(min_quality) != [expected]:
        raise ValueError(
            f"min_quality {dict(min_quality)!r} does not fit the metric {metric!r} ({direction}d); "
            f"write {{{expected}: <bound>}}"
        )
    return float(min_quality[expected])


def decide(
    challenger_score: float,
    champion_score: float | None,
    *,
    direction: Direction,
    min_improvement: float = 0.0,
    improvement_mode: Literal["relative", "absolute"] = "relative",
    holdout_rows: int,
    min_holdout_rows: int = 1,
    min_quality: Mapping[str, float] | None = None,
    bootstrap: BootstrapResult | None = None,
    slices: Sequence[SliceResult] = (),
    max_slice_regression: float | None = None,
    min_slice_rows: int | None = None,
    naive_baseline: NaiveBaselineResult | None = None,
    no_champion: str = "no champion yet",
) -> GateDecision:
    """Decide whether the challenger replaces the champion.

    Both scores (and the bootstrap, slices and naive baseline) must come from the same holdout. The rules,
    in order: the holdout has ``min_holdout_rows``; the challenger's score is finite and within
    ``min_quality``; it beats the ``naive_baseline`` (when given); with no champion (``no_champion`` says
    why) or one that cannot be scored the challenger is promoted; otherwise it must be better, by at
    least ``min_improvement`` (a fraction of the champion's score when relative); with a bootstrap, the
    interval of the improvement must exclude zero; and no judged slice may be breached (worse than the
    champion on it by more than ``max_slice_regression``). The first rule that fails keeps the champion
    and is named in ``refused_by`` and the reason.
    """
    bound = None
    if min_quality:
        ((quality_key, bound),) = min_quality.items()

    def decision(promote: bool, reason: str, improvement: float | None = None, rule: str | None = None) -> GateDecision:
        return GateDecision(
            promote=promote,
            reason=reason,
            challenger_score=challenger_score,
            champion_score=champion_score,
            improvement=improvement,
            min_improvement=min_improvement,
            improvement_mode=improvement_mode,
            direction=direction,
            holdout_rows=holdout_rows,
            refused_by=None if promote else rule,
            min_holdout_rows=min_holdout_rows,
            min_quality=dict(min_quality) if min_quality else None,
            bootstrap=bootstrap,
            slices=tuple(slices),
            max_slice_regression=max_slice_regression,
            min_slice_rows=min_slice_rows,
            naive_baseline=naive_baseline,
        )

    if holdout_rows < min_holdout_rows:
        reason = f"holdout has {holdout_rows} rows, fewer than the {min_holdout_rows} required"
        return decision(False, reason, None, "min_holdout_rows")
    if not math.isfinite(challenger_score):
        return decision(False, f"challenger score {challenger_score!r} is not a finite number", None, "finite_score")
    if bound is not None:
        metric = quality_key.partition("_")[2]
        if quality_key.startswith("max_") and challenger_score > bound:
            return decision(
                False,
                f"challenger {metric} {challenger_score:.4g} is above the maximum {bound:.4g} "
                f"(min_quality.{quality_key}); champion kept",
                None,
                "min_quality",
            )
        if quality_key.startswith("min_") and challenger_score < bound:
            return decision(
                False,
                f"challenger {metric} {challenger_score:.4g} is below the minimum {bound:.4g} "
                f"(min_quality.{quality_key}); champion kept",
                None,
                "min_quality",
            )
    if naive_baseline is not None and not naive_baseline.passed:
        return decision(False, naive.refusal(naive_baseline, challenger_score), None, "naive_baseline")
    if champion_score is None:
        beats = f" (skill {naive_baseline.skill:+.1%} over the naive baseline)" if naive_baseline else ""
        return decision(True, f"{no_champion}: the first valid model becomes champion{beats}")
    if not math.isfinite(champion_score):
        return decision(
            True, f"the champion cannot be scored on this holdout ({champion_score!r}); challenger promoted"
        )
    gain = champion_score - challenger_score if direction == "minimize" else challenger_score - champion_score
    improvement = gain / abs(champion_score) if improvement_mode == "relative" and champion_score != 0 else gain
    shown = _show(improvement, improvement_mode, sign=True)
    needed = _show(min_improvement, improvement_mode)
    if gain <= 0:
        return decision(
            False,
            f"challenger is not better than the champion ({shown}); champion kept",
            improvement,
            "better_than_champion",
        )
    if improvement < min_improvement:
        return decision(
            False, f"improvement {shown} is below the required {needed}; champion kept", improvement, "min_improvement"
        )
    interval = ""
    if bootstrap is not None and bootstrap.improvement is not None:
        low, high = bootstrap.improvement
        interval = f"{bootstrap.confidence:.0%} CI [{_show(low, improvement_mode)}, {_show(high, improvement_mode)}]"
        if not low > 0:
            where = "includes 0" if high >= 0 else "lies below 0"
            return decision(
                False,
                f"tie within noise: improvement {_show(improvement, improvement_mode)} with {interval} {where}; "
                "champion kept",
                improvement,
                "bootstrap",
            )
    breached = sorted((s for s in slices if s.breached), key=lambda s: -(s.regression or 0.0))
    if breached:
        worst = breached[0]
        more = f" (and {len(breached) - 1} more slice(s))" if len(breached) > 1 else ""
        limit = _show(max_slice_regression or 0.0, "relative")
        return decision(
            False,
            f"slice {worst.name} is {worst.regression:.1%} worse than the champion (max {limit}){more}; champion kept",
            improvement,
            "max_slice_regression",
        )
    evidence = f"; {interval}" if interval else ""
    return decision(True, f"challenger beats the champion by {shown} (required {needed}{evidence})", improvement)


def _show(value: float, mode: str, *, sign: bool = False) -> str:
    """A gain as people read it: a percentage when relative."""
    if mode == "relative":
        return f"{value * 100:{'+' if sign else ''}.3g}%"
    return f"{value:{'+' if sign else ''}.3g}"


def judge(
    metric: str,
    y_true: Any,
    challenger_pred: Any,
    champion_pred: Any | None,
    *,
    rules: GateRules,
    columns: Mapping[str, Any] | None = None,
    training_target: Any | None = None,
    no_champion: str = "no champion yet",
) -> GateDecision:
    """Score both models' and the naive baseline's holdout predictions, bootstrap and slice them, and :func:`decide`.

    Args:
        metric: A metric of :data:`airflow_ml.ml.metrics.DIRECTIONS`.
        y_true: The holdout's true values.
        challenger_pred: The challenger's predictions of the same rows.
        champion_pred: The champion's, or None when there is no champion.
        rules: The thresholds.
        columns: The holdout's values of every column that ``rules.slices`` names.
        training_target: The training rows' target (of the same time split), for ``rules.naive_baseline``.
        no_champion: Why there is no champion, for the reason of a first model.

    Raises:
        ValueError: for a ``min_quality`` that does not fit the metric, a slice column not in ``columns``, or
            a naive baseline without ``training_target``.
    """
    from airflow_ml.ml.bootstrap import paired_bootstrap
    from airflow_ml.ml.metrics import DIRECTIONS, score
    from airflow_ml.ml.slices import evaluate_slices

    direction: Direction = DIRECTIONS[metric]  # type: ignore[assignment]
    quality_bound(rules.min_quality, metric, direction)  # refuses a bound that does not fit the metric
    challenger_score = score(metric, y_true, challenger_pred)
    champion_score = None if champion_pred is None else score(metric, y_true, champion_pred)
    baseline = None
    if rules.naive_baseline is not None and rules.naive_baseline.enabled:
        if training_target is None:
            raise ValueError("the naive_baseline rule needs the training rows' target (training_target)")
        baseline = naive.evaluate(metric, y_true, challenger_score, training_target, rules.naive_baseline)
    bootstrap = None
    if rules.bootstrap and math.isfinite(challenger_score):
        bootstrap = paired_bootstrap(
            metric,
            y_true,
            challenger_pred,
            champion_pred if champion_score is not None and math.isfinite(champion_score) else None,
            improvement_mode=rules.improvement_mode,
            resamples=int(rules.bootstrap.get("resamples", 1000)),
            confidence=float(rules.bootstrap.get("confidence", 0.95)),
            seed=int(rules.bootstrap.get("seed", 0)),
        )
    slices = evaluate_slices(
        metric,
        y_true,
        challenger_pred,
        champion_pred,
        columns or {},
        rules.slices,
        max_regression=rules.max_slice_regression,
        min_rows=rules.min_slice_rows,
    )
    return decide(
        challenger_score,
        champion_score,
        direction=direction,
        min_improvement=rules.min_improvement,
        improvement_mode=rules.improvement_mode,
        holdout_rows=len(challenger_pred),
        min_holdout_rows=rules.min_holdout_rows,
        min_quality=rules.min_quality,
        bootstrap=bootstrap,
        slices=slices,
        max_slice_regression=rules.max_slice_regression,
        min_slice_rows=rules.min_slice_rows if rules.slices else None,
        naive_baseline=baseline,
        no_champion=no_champion,
    )


def slice_summary(decision: Mapping[str, Any]) -> str:
    """One line on a decision record's slices, for a version tag (the table is in ``gate/decision.json``)."""
    slices = decision.get("slices") or []
    if not slices:
        return "no slices"
    judged = [s for s in slices if s["judged"]]
    breached = [s for s in judged if s["breached"]]
    columns = ", ".join(dict.fromkeys(s["column"] for s in slices))
    text = f"{len(slices)} slice(s) of {columns}; {len(judged)} judged (>= {decision.get('min_slice_rows')} rows)"
    if judged:
        worst = max(judged, key=lambda s: s["regression"])
        text += f"; worst {worst['column']}={worst['value']} {worst['regression']:+.1%}"
        limit = decision.get("max_slice_regression")
        text += f" (max {limit:.1%})"
    return text + f"; {len(breached)} breached; the table is in gate/decision.json"


#: Promotion modes a run can be triggered with.
MODES = ("auto", "require_approval", "force", "dry_run")

#: The decision label of a run whose gate recommends promotion and which waits for a person.
AWAITING_APPROVAL = "awaiting-approval"


@dataclass(frozen=True)
class Outcome:
    """What a run does with the gate's decision, given its promotion mode."""

    label: str
    move_champion: bool
    reason: str


def check_mode(mode: str, trigger_reason: str = "") -> None:
    """Refuse an unknown mode, and a forced promotion without a reason to record.

    Raises:
        ValueError: naming the mode and the fix.
    """
    if mode not in MODES:
        raise ValueError(f"unknown promotion mode {mode!r}; choose one of {list(MODES)}")
    if mode == "force" and not trigger_reason.strip():
        raise ValueError("promotion mode 'force' needs a reason: fill in the trigger form's Reason, it is recorded")


def apply_mode(decision: GateDecision, mode: str, trigger_reason: str = "") -> Outcome:
    """Turn the gate's decision into what the run does: ``auto`` follows it, ``require_approval`` waits
    for a person before following a recommendation to promote, ``force`` promotes anyway (recorded as
    forced, with the trigger's reason), ``dry_run`` records it and moves nothing."""
    check_mode(mode, trigger_reason)
    would = "promoted" if decision.promote else "kept the champion"
    if mode == "require_approval" and decision.promote:
        return Outcome(
            AWAITING_APPROVAL, False, f"the gate recommends promotion, waiting for approval: {decision.reason}"
        )
    if mode == "dry_run":
        return Outcome("dry-run", False, f"dry run, nothing moved; the gate would have {would}: {decision.reason}")
    if mode == "force":
        reason = (
            f"forced by the trigger ({trigger_reason.strip()}); the gate alone would have {would}: {decision.reason}"
        )
        return Outcome("forced", True, reason)
    return Outcome("promoted" if decision.promote else "kept", decision.promote, decision.reason)
