"""The gate's decision: score both models and the naive baseline on one holdout, gather the evidence, check it.

Free of numpy at import: :func:`judge` imports the numeric parts (:mod:`~airflow_ml.ml.gate.bootstrap`,
:mod:`~airflow_ml.ml.gate.slices`) when it runs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from airflow_ml.ml.gate import checks
from airflow_ml.ml.gate import fleet_outlier as fleet_rule
from airflow_ml.ml.gate import naive_baseline as naive
from airflow_ml.ml.gate.checks import Evidence
from airflow_ml.ml.gate.fleet_outlier import FleetResult, FleetSkills
from airflow_ml.ml.gate.naive_baseline import NaiveBaselineResult
from airflow_ml.ml.gate.records import BootstrapResult, GateDecision, SliceResult
from airflow_ml.ml.gate.rules import Direction, GateRules, quality_bound
from airflow_ml.ml.gate.schema_change import SchemaCheck


def decide(
    challenger_score: float,
    champion_score: float | None,
    *,
    direction: Direction,
    rules: GateRules,
    holdout_rows: int,
    bootstrap: BootstrapResult | None = None,
    slices: Sequence[SliceResult] = (),
    naive_baseline: NaiveBaselineResult | None = None,
    fleet: FleetResult | None = None,
    schema: SchemaCheck | None = None,
    no_champion: str = "no champion yet",
) -> GateDecision:
    """Decide whether the challenger replaces the champion.

    Both scores (and the bootstrap, slices and naive baseline) must come from the same holdout. The checks of
    :data:`~airflow_ml.ml.gate.checks.BEFORE_CHAMPION` come first; with no champion (``no_champion`` says
    why) or one that cannot be scored, a challenger that passes them is promoted; otherwise it must also
    pass :data:`~airflow_ml.ml.gate.checks.AGAINST_CHAMPION`. The first check that refuses keeps the
    champion and is named in ``refused_by`` and the reason.
    """
    improvement = None
    if champion_score is not None and math.isfinite(champion_score):
        gain = champion_score - challenger_score if direction == "minimize" else challenger_score - champion_score
        relative = rules.improvement_mode == "relative" and champion_score != 0
        improvement = gain / abs(champion_score) if relative else gain
    evidence = Evidence(
        challenger_score,
        champion_score,
        direction,
        holdout_rows,
        improvement,
        bootstrap,
        tuple(slices),
        naive_baseline,
        fleet,
        schema,
    )

    applied = rules.to_dict()

    def decision(promote: bool, reason: str, rule: str | None = None, improvement: float | None = None) -> GateDecision:
        return GateDecision(
            promote=promote,
            reason=reason,
            challenger_score=challenger_score,
            champion_score=champion_score,
            improvement=improvement,
            min_improvement=rules.min_improvement,
            improvement_mode=rules.improvement_mode,
            direction=direction,
            holdout_rows=holdout_rows,
            refused_by=None if promote else rule,
            min_holdout_rows=rules.min_holdout_rows,
            min_quality=dict(rules.min_quality) if rules.min_quality else None,
            bootstrap=bootstrap,
            slices=tuple(slices),
            max_slice_regression=rules.max_slice_regression,
            min_slice_rows=rules.min_slice_rows if rules.slices else None,
            naive_baseline=naive_baseline,
            fleet=fleet,
            schema_diff=schema,
            rules=applied,
        )

    for check in checks.BEFORE_CHAMPION:
        refusal = check(evidence, rules)
        if refusal is not None:
            return decision(False, refusal, check.__name__)
    if champion_score is None:
        beats = f" (skill {naive_baseline.skill:+.1%} over the naive baseline)" if naive_baseline else ""
        return decision(True, f"{no_champion}: the first valid model becomes champion{beats}")
    if improvement is None:
        return decision(
            True, f"the champion cannot be scored on this holdout ({champion_score!r}); challenger promoted"
        )
    for check in checks.AGAINST_CHAMPION:
        refusal = check(evidence, rules)
        if refusal is not None:
            return decision(False, refusal, check.__name__, improvement)
    shown = checks.show(improvement, rules.improvement_mode, sign=True)
    needed = checks.show(rules.min_improvement, rules.improvement_mode)
    interval = checks.interval(evidence, rules)
    evidence_text = f"; {interval}" if interval else ""
    return decision(
        True, f"challenger beats the champion by {shown} (required {needed}{evidence_text})", None, improvement
    )


def judge(
    metric: str,
    y_true: Any,
    challenger_pred: Any,
    champion_pred: Any | None,
    *,
    rules: GateRules,
    columns: Mapping[str, Any] | None = None,
    training_target: Any | None = None,
    fleet_skills: FleetSkills | None = None,
    schema: SchemaCheck | None = None,
    no_champion: str = "no champion yet",
) -> GateDecision:
    """Score both models' and the naive baseline's holdout predictions, bootstrap and slice them, and :func:`decide`.

    Args:
        metric: A metric of :data:`airflow_ml.ml.metrics.DIRECTIONS`.
        y_true: The holdout's true values, in time order (the bootstrap resamples runs of consecutive rows).
        challenger_pred: The challenger's predictions of the same rows.
        champion_pred: The champion's, or None when there is no champion.
        rules: The thresholds.
        columns: The holdout's values of every column that ``rules.slices`` names.
        training_target: The training rows' target (of the same time split), for ``rules.naive_baseline``.
        fleet_skills: The sibling champions' and the city's past skills, for ``rules.fleet_outlier`` (which
            also needs ``rules.naive_baseline``: the challenger's skill over it is what is compared).
        schema: The comparison of the challenger's inputs with the champion's, for the ``schema_change`` check.
        no_champion: Why there is no champion, for the reason of a first model.

    Raises:
        ValueError: for a ``min_quality`` that does not fit the metric, a slice column not in ``columns``, or
            a naive baseline without ``training_target``.
    """
    from airflow_ml.ml.gate.bootstrap import paired_bootstrap
    from airflow_ml.ml.gate.slices import evaluate_slices
    from airflow_ml.ml.metrics import DIRECTIONS, score

    direction: Direction = DIRECTIONS[metric]  # type: ignore[assignment]
    quality_bound(rules.min_quality, metric, direction)  # refuses a bound that does not fit the metric
    challenger_score = score(metric, y_true, challenger_pred)
    champion_score = None if champion_pred is None else score(metric, y_true, champion_pred)
    baseline = None
    if rules.naive_baseline is not None and rules.naive_baseline.enabled:
        if training_target is None:
            raise ValueError("the naive_baseline rule needs the training rows' target (training_target)")
        baseline = naive.evaluate(metric, y_true, challenger_score, training_target, rules.naive_baseline)
    fleet = None
    if rules.fleet_outlier is not None and fleet_skills is not None:
        if baseline is None:
            fleet = FleetResult(False, 0, rules.fleet_outlier.max_z, note="not applied: naive_baseline is off")
        else:
            fleet = fleet_rule.evaluate(baseline.skill, fleet_skills, rules.fleet_outlier)
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
            block_length=rules.bootstrap.get("block_length", "auto"),
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
        rules=rules,
        holdout_rows=len(challenger_pred),
        bootstrap=bootstrap,
        slices=slices,
        naive_baseline=baseline,
        fleet=fleet,
        schema=schema,
        no_champion=no_champion,
    )
