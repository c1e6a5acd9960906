"""The gate's settings: :class:`GateRules`, built once by the factory from the template's ``gate:`` and ``split:``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from airflow_ml.ml.gate.fleet_outlier import FleetOutlier
from airflow_ml.ml.gate.naive_baseline import NaiveBaseline
from airflow_ml.ml.gate.schema_change import AcceptSchemaChange, LevelTolerance

Direction = Literal["minimize", "maximize"]


@dataclass(frozen=True)
class GateRules:
    """The thresholds of a city's gate, as plain values (from the template's ``gate:`` and ``split:``).

    A new rule is a field here (off by default), its setting in the spec (``templates/gate_spec.py``) and its
    check in :mod:`airflow_ml.ml.gate.checks`; nothing else changes.

    Attributes:
        min_improvement: Required gain over the champion (a fraction of its score when relative).
        improvement_mode: ``relative`` or ``absolute``.
        max_improvement: A larger gain over the champion (same unit) is implausible and refused; None: off.
        min_holdout_rows: Refuse to decide on a smaller holdout.
        min_quality: At most one bound on the challenger's own score, ``{"max_rmse": 12}`` for a metric
            where lower is better, ``{"min_auc": 0.7}`` for one where higher is; None: no bound.
        bootstrap: ``{"resamples", "confidence", "seed", "block_length"}`` of the paired block bootstrap (a
            missing ``block_length`` is ``"auto"``); None: off.
        slices: ``{"column": ..., "bins": [...] or None}`` per slicing of the holdout.
        max_slice_regression: How much worse (relative) any judged slice may be; None: slices are reported only.
        min_slice_rows: Smaller slices are reported but not judged.
        naive_baseline: The challenger must beat a constant learnt from the training rows; None: off.
        fleet_outlier: The challenger's skill over the naive baseline must not lie far from its sibling cities'
            champions' (a robust z-score) unless the city's history explains it; None: off.
        accept_schema_change: The template's declaration of a change of the model's inputs; None: a
            challenger whose schema differs from the champion's is refused.
        level_tolerance: Categorical-level churn that is no schema change (on by default: a new rare level, a
            rare level gone).
    """

    min_improvement: float = 0.0
    improvement_mode: Literal["relative", "absolute"] = "relative"
    max_improvement: float | None = None
    min_holdout_rows: int = 1
    min_quality: Mapping[str, float] | None = None
    bootstrap: Mapping[str, Any] | None = None
    slices: Sequence[Mapping[str, Any]] = ()
    max_slice_regression: float | None = None
    min_slice_rows: int = 100
    naive_baseline: NaiveBaseline | None = None
    fleet_outlier: FleetOutlier | None = None
    accept_schema_change: AcceptSchemaChange | None = None
    level_tolerance: LevelTolerance = field(default_factory=LevelTolerance)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form."""
        # Shallow, not dataclasses.asdict (a deep copy): the factory calls this for every city at parse time.
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["naive_baseline"] = self.naive_baseline.to_dict() if self.naive_baseline else None
        data["fleet_outlier"] = self.fleet_outlier.to_dict() if self.fleet_outlier else None
        accept = self.accept_schema_change
        data["accept_schema_change"] = accept.to_dict() if accept else None
        data["level_tolerance"] = self.level_tolerance.to_dict()
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
        raw = values.get("fleet_outlier")
        values["fleet_outlier"] = FleetOutlier.from_dict(raw) if isinstance(raw, Mapping) else raw
        raw = values.get("accept_schema_change")
        values["accept_schema_change"] = AcceptSchemaChange.from_dict(raw) if isinstance(raw, Mapping) else raw
        raw = values.get("level_tolerance")
        if isinstance(raw, Mapping):
            values["level_tolerance"] = LevelTolerance.from_dict(raw)
        return cls(**values)


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
