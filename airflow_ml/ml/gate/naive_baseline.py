"""The naive-baseline rule of the gate: a challenger must beat predicting one constant learnt from training rows.

The constant is the training rows' mean (or median) target for a regression and their positive rate (the
prior) for a binary task; it is scored on the same holdout as the challenger, with the template's metric.
This module stays free of numpy at import, like the rest of :mod:`airflow_ml.ml.gate` but its bootstrap and slices.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal


@dataclass(frozen=True)
class NaiveBaseline:
    """The rule's settings (the template's ``gate.naive_baseline``).

    Attributes:
        enabled: False turns the rule off.
        statistic: ``mean`` or ``median`` of the training target (regression); a binary task always
            predicts the training prior.
        min_skill: Required skill over the baseline (see :func:`airflow_ml.ml.metrics.skill`): 0.05 means
            5% better; the challenger must be strictly better even at 0.
    """

    enabled: bool = True
    statistic: Literal["mean", "median"] = "mean"
    min_skill: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NaiveBaseline:
        """The settings from :meth:`to_dict` (or the spec's dump).

        Raises:
            ValueError: naming an unknown key.
        """
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"naive_baseline has unknown key(s) {unknown}; known: enabled, statistic, min_skill")
        return cls(**data)


@dataclass(frozen=True)
class NaiveBaselineResult:
    """How the naive baseline scored on the holdout, and the challenger's skill over it.

    Attributes:
        metric: The template's metric, on which both were scored.
        statistic: ``mean``, ``median`` or ``prior``: what the constant is, of the training target.
        value: The constant predicted for every holdout row.
        training_rows: The training rows it was computed from.
        score: Its holdout score on the template's metric.
        skill: The challenger's skill over it (NaN when undefined, e.g. a perfect baseline).
        min_skill: The skill required.
        passed: Whether the challenger is better than the baseline by at least ``min_skill`` (and at all).
    """

    metric: str
    statistic: str
    value: float
    training_rows: int
    score: float
    skill: float
    min_skill: float
    passed: bool

    @property
    def label(self) -> str:
        """``training mean`` (``median``, ``prior``), as the reasons say it."""
        return f"training {self.statistic}"


def evaluate(
    metric: str, y_true: Any, challenger_score: float, training_target: Any, rule: NaiveBaseline
) -> NaiveBaselineResult:
    """Score the naive baseline of ``training_target`` on the holdout ``y_true`` and the challenger's skill over it.

    Raises:
        ValueError: when the training rows have no target value to learn the constant from.
    """
    import numpy as np

    from airflow_ml.ml.metrics import BINARY, score, skill

    train = np.asarray(training_target, dtype="float64")
    train = train[~np.isnan(train)]
    if train.size == 0:
        raise ValueError("the naive baseline needs training rows with a target value; the training split has none")
    statistic = "prior" if metric in BINARY else rule.statistic
    value = float(np.median(train) if statistic == "median" else train.mean())
    baseline = score(metric, y_true, np.full(len(y_true), value))
    gain = skill(metric, challenger_score, baseline)
    return NaiveBaselineResult(
        metric=metric,
        statistic=statistic,
        value=value,
        training_rows=int(train.size),
        score=baseline,
        skill=gain,
        min_skill=rule.min_skill,
        passed=bool(gain > 0 and gain >= rule.min_skill),
    )


def refusal(result: NaiveBaselineResult, challenger_score: float) -> str:
    """Why the challenger is refused: its score, the baseline's, the skill and what was required.

    E.g. ``challenger rmse 12.3 is not better than the naive baseline (training mean 31.2 for every row)
    at rmse 12.1 by the required skill 5% (skill -1.7%); champion kept``.
    """
    required = f" by the required skill {result.min_skill * 100:.3g}%" if result.min_skill else ""
    if math.isnan(result.skill):
        skill = "no skill can be measured: the baseline is perfect or cannot be scored on this holdout"
    else:
        skill = f"skill {result.skill * 100:+.3g}%"
    metric = result.metric
    return (
        f"challenger {metric} {challenger_score:.4g} is not better than the naive baseline ({result.label} "
        f"{result.value:.4g} for every row) at {metric} {result.score:.4g}{required} ({skill}); champion kept"
    )


def from_record(data: Mapping[str, Any] | None) -> NaiveBaselineResult | None:
    """The result back from a decision record's ``naive_baseline`` (after a JSON round trip)."""
    if data is None:
        return None
    return NaiveBaselineResult(**{f.name: data[f.name] for f in fields(NaiveBaselineResult)})
