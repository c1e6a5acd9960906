"""The gate's rules, one function each: given the evidence and the rules, the reason to keep the champion, or None.

A check's name is the rule's name, recorded as the decision's ``refused_by``. :data:`BEFORE_CHAMPION` runs
first, for every challenger; a challenger that passes them and has a scorable champion then faces
:data:`AGAINST_CHAMPION`, in order. The first check that refuses decides.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from airflow_ml.ml.gate import fleet_outlier as fleet
from airflow_ml.ml.gate import naive_baseline as naive
from airflow_ml.ml.gate import schema_change as schema
from airflow_ml.ml.gate.fleet_outlier import FleetResult
from airflow_ml.ml.gate.naive_baseline import NaiveBaselineResult
from airflow_ml.ml.gate.records import BootstrapResult, SliceResult
from airflow_ml.ml.gate.rules import Direction, GateRules
from airflow_ml.ml.gate.schema_change import SchemaCheck


@dataclass(frozen=True)
class Evidence:
    """What the checks judge: both models' scores on one holdout, and what was measured on it.

    ``improvement`` is the challenger's gain over the champion (a fraction of its score when the rules'
    mode is relative; positive is better), None without a scorable champion. ``fleet`` is the fleet-outlier
    rule's figures (the gate step reads the siblings' skills from the registry) and ``schema`` the comparison
    of the challenger's inputs with the champion's; None when not measured.
    """

    challenger_score: float
    champion_score: float | None
    direction: Direction
    holdout_rows: int
    improvement: float | None = None
    bootstrap: BootstrapResult | None = None
    slices: tuple[SliceResult, ...] = ()
    naive_baseline: NaiveBaselineResult | None = None
    fleet: FleetResult | None = None
    schema: SchemaCheck | None = None


Check = Callable[[Evidence, GateRules], "str | None"]


def show(value: float, mode: str, *, sign: bool = False) -> str:
    """A gain as people read it: a percentage when relative."""
    if mode == "relative":
        return f"{value * 100:{'+' if sign else ''}.3g}%"
    return f"{value:{'+' if sign else ''}.3g}"


def interval(evidence: Evidence, rules: GateRules) -> str:
    """The bootstrap interval of the improvement, as the reasons quote it; empty without one."""
    if evidence.bootstrap is None or evidence.bootstrap.improvement is None:
        return ""
    low, high = evidence.bootstrap.improvement
    mode = rules.improvement_mode
    return f"{evidence.bootstrap.confidence:.0%} CI [{show(low, mode)}, {show(high, mode)}]"


def min_holdout_rows(evidence: Evidence, rules: GateRules) -> str | None:
    """The holdout has at least ``min_holdout_rows`` rows."""
    if evidence.holdout_rows < rules.min_holdout_rows:
        return f"holdout has {evidence.holdout_rows} rows, fewer than the {rules.min_holdout_rows} required"
    return None


def finite_score(evidence: Evidence, rules: GateRules) -> str | None:
    """The challenger's score is a finite number."""
    if not math.isfinite(evidence.challenger_score):
        return f"challenger score {evidence.challenger_score!r} is not a finite number"
    return None


def min_quality(evidence: Evidence, rules: GateRules) -> str | None:
    """The challenger's own score is within the ``min_quality`` bound."""
    if not rules.min_quality:
        return None
    ((key, bound),) = rules.min_quality.items()
    metric, score = key.partition("_")[2], evidence.challenger_score
    if key.startswith("max_") and score > bound:
        return f"challenger {metric} {score:.4g} is above the maximum {bound:.4g} (min_quality.{key}); champion kept"
    if key.startswith("min_") and score < bound:
        return f"challenger {metric} {score:.4g} is below the minimum {bound:.4g} (min_quality.{key}); champion kept"
    return None


def naive_baseline(evidence: Evidence, rules: GateRules) -> str | None:
    """The challenger beats the naive baseline by its ``min_skill`` (when the rule is on)."""
    if evidence.naive_baseline is not None and not evidence.naive_baseline.passed:
        return naive.refusal(evidence.naive_baseline, evidence.challenger_score)
    return None


def fleet_outlier(evidence: Evidence, rules: GateRules) -> str | None:
    """The challenger's skill lies within ``max_z`` robust z-scores of its siblings' champions (when the rule is on).

    A suspect challenger passes when the city's own promoted history explains the gap.
    """
    if evidence.fleet is not None and evidence.fleet.refuses:
        return fleet.refusal(evidence.fleet)
    return None


def schema_change(evidence: Evidence, rules: GateRules) -> str | None:
    """The challenger's inputs are the champion's, or the template declares the change (``accept_schema_change``)."""
    if evidence.schema is not None and evidence.schema.refuses:
        return schema.refusal(evidence.schema)
    return None


def better_than_champion(evidence: Evidence, rules: GateRules) -> str | None:
    """The challenger is better than the champion at all."""
    if evidence.improvement is not None and evidence.improvement <= 0:
        shown = show(evidence.improvement, rules.improvement_mode, sign=True)
        return f"challenger is not better than the champion ({shown}); champion kept"
    return None


def min_improvement(evidence: Evidence, rules: GateRules) -> str | None:
    """The challenger is better by at least ``min_improvement``."""
    if evidence.improvement is not None and evidence.improvement < rules.min_improvement:
        shown = show(evidence.improvement, rules.improvement_mode, sign=True)
        needed = show(rules.min_improvement, rules.improvement_mode)
        return f"improvement {shown} is below the required {needed}; champion kept"
    return None


def max_improvement(evidence: Evidence, rules: GateRules) -> str | None:
    """The improvement is plausible: at most ``max_improvement`` (when set); a larger one suggests a leak."""
    if rules.max_improvement is None or evidence.improvement is None or evidence.improvement <= rules.max_improvement:
        return None
    shown = show(evidence.improvement, rules.improvement_mode, sign=True)
    limit = show(rules.max_improvement, rules.improvement_mode)
    return (
        f"improvement {shown} is above the plausible maximum {limit} (max_improvement): a leak or a broken "
        "holdout is likelier than such a gain; champion kept"
    )


def bootstrap(evidence: Evidence, rules: GateRules) -> str | None:
    """The bootstrap interval of the improvement excludes zero (when the bootstrap is on)."""
    if evidence.bootstrap is None or evidence.bootstrap.improvement is None or evidence.improvement is None:
        return None
    low, high = evidence.bootstrap.improvement
    if low > 0:
        return None
    where = "includes 0" if high >= 0 else "lies below 0"
    shown = show(evidence.improvement, rules.improvement_mode)
    return f"tie within noise: improvement {shown} with {interval(evidence, rules)} {where}; champion kept"


def max_slice_regression(evidence: Evidence, rules: GateRules) -> str | None:
    """No judged slice is worse than the champion on it by more than ``max_slice_regression``."""
    breached = sorted((s for s in evidence.slices if s.breached), key=lambda s: -(s.regression or 0.0))
    if not breached:
        return None
    worst = breached[0]
    more = f" (and {len(breached) - 1} more slice(s))" if len(breached) > 1 else ""
    limit = show(rules.max_slice_regression or 0.0, "relative")
    return f"slice {worst.name} is {worst.regression:.1%} worse than the champion (max {limit}){more}; champion kept"


#: The checks every challenger faces, a first one included.
BEFORE_CHAMPION: tuple[Check, ...] = (
    min_holdout_rows,
    finite_score,
    schema_change,
    min_quality,
    naive_baseline,
    fleet_outlier,
)
#: The checks of a challenger against a champion scored on the same holdout.
AGAINST_CHAMPION: tuple[Check, ...] = (
    better_than_champion,
    min_improvement,
    max_improvement,
    bootstrap,
    max_slice_regression,
)
