"""What the gate decided and on which evidence: the records logged as version tags and ``gate/decision.json``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from airflow_ml.ml.gate import naive_baseline as naive
from airflow_ml.ml.gate.fleet_outlier import FleetResult
from airflow_ml.ml.gate.naive_baseline import NaiveBaselineResult
from airflow_ml.ml.gate.schema_change import SchemaCheck


@dataclass(frozen=True)
class BootstrapResult:
    """Percentile intervals from a paired block bootstrap over the holdout rows (the same resamples for both models).

    ``improvement`` is in the unit of ``min_improvement`` (a fraction when relative); positive is better.
    ``block_length`` is the number of consecutive rows per drawn block that was used (1: single rows),
    ``block_auto`` whether it was chosen from the data (``gate.bootstrap.block_length: auto``), ``block_capped``
    whether ``auto``'s cap cut the length the data asked for (set ``block_length`` to the rows of the known
    regime, e.g. a day's, then).
    """

    resamples: int
    confidence: float
    seed: int
    challenger: tuple[float, float]
    champion: tuple[float, float] | None = None
    improvement: tuple[float, float] | None = None
    block_length: int = 1
    block_auto: bool = False
    block_capped: bool = False


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

    ``refused_by`` names the rule that kept the champion (None when the gate promotes): one of the checks of
    :mod:`airflow_ml.ml.gate.checks` (``min_holdout_rows``, ``finite_score``, ``min_quality``,
    ``naive_baseline``, ``fleet_outlier``, ``schema_change``, ``better_than_champion``, ``min_improvement``,
    ``bootstrap``, ``max_slice_regression``...). ``fleet`` holds the fleet-outlier rule's figures and
    ``schema_diff`` the comparison of the challenger's inputs with the champion's (None when not measured).
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
    fleet: FleetResult | None = None
    schema_diff: SchemaCheck | None = None
    #: Every rule as applied (:meth:`GateRules.to_dict`): a rule added to GateRules is recorded with no change here.
    rules: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form."""
        data = asdict(self)
        data["slices"] = [asdict(s) for s in self.slices]
        data["schema_diff"] = self.schema_diff.to_dict() if self.schema_diff is not None else None
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
                block_length=int(raw.get("block_length", 1)),  # a record from before block resampling: rows
                block_auto=bool(raw.get("block_auto", False)),
                block_capped=bool(raw.get("block_capped", False)),
            )
        values["slices"] = tuple(SliceResult(**s) for s in values.get("slices") or ())
        values["naive_baseline"] = naive.from_record(values.get("naive_baseline"))
        values["fleet"] = FleetResult.from_dict(values.get("fleet"))
        values["schema_diff"] = SchemaCheck.from_dict(values.get("schema_diff"))
        return cls(**values)


def _pair(value: Any) -> Any:
    return None if value is None else (float(value[0]), float(value[1]))


def slice_summary(
    decision: Mapping[str, Any],
    *,
    table: str = "the table is in gate/decision.json",
    text: Callable[[Any], str] = str,
) -> str:
    """One line on a decision record's slices, for the approval screen; ``table`` says where the full table is.

    ``text`` writes the record's column names and slice values (markdown escaping for the approval body).
    """
    slices = decision.get("slices") or []
    if not slices:
        return "no slices"
    judged = [s for s in slices if s["judged"]]
    breached = [s for s in judged if s["breached"]]
    columns = ", ".join(dict.fromkeys(text(s["column"]) for s in slices))
    line = f"{len(slices)} slice(s) of {columns}; {len(judged)} judged (>= {decision.get('min_slice_rows')} rows)"
    if judged:
        worst = max(judged, key=lambda s: s["regression"])
        line += f"; worst {text(worst['column'])}={text(worst['value'])} {worst['regression']:+.1%}"
        limit = decision.get("max_slice_regression")
        line += f" (max {limit:.1%})"
    return line + f"; {len(breached)} breached; {table}"
