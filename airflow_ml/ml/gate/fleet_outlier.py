"""The fleet-outlier rule of the gate: a challenger whose skill sits far from its sibling cities' champions is suspect.

The score compared is the challenger's skill over the naive baseline (:func:`airflow_ml.ml.metrics.skill`), which
is comparable across cities whatever their scale. The siblings are the template's other cities' current
champions, whose skill the registry keeps as a tag of each registered model (:mod:`airflow_ml.ml.champion_skill`).
With the siblings' median ``m`` and robust spread ``s = max(1.4826 * MAD, SCALE_FLOOR)``, the challenger's
robust z-score is ``(skill - m) / s``; beyond ``max_z`` on either side it is suspect (far above: a leak is
likelier; far below: broken data or features), unless the city's own history explains it: with at least
``min_history`` past promoted versions of the city, whose median skill ``h`` lies on the same side with
``|z(h)| >= max_z / 2`` and ``|skill - h| <= max_z * s`` (the city has always been that far from the fleet).

Pure Python (``statistics``), free of numpy at import like the rest of :mod:`airflow_ml.ml.gate`.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from airflow_ml.ml.frozen_settings import FrozenSettings

#: The smallest robust spread used: siblings whose skills are all alike would otherwise make any gap infinite.
SCALE_FLOOR = 0.01
#: 1.4826 * MAD estimates the standard deviation of normally distributed values.
MAD_TO_SD = 1.4826


@dataclass(frozen=True)
class FleetOutlier(FrozenSettings):
    """The rule's settings (the template's ``gate.fleet_outlier``); ``from_dict`` refuses an unknown key.

    Attributes:
        max_z: A robust z-score beyond this, either side, is suspect.
        min_siblings: Fewer sibling champions with a skill: the rule is not applied.
        min_history: Past promoted versions of the city needed before its own history can explain a gap.
    """

    max_z: float = 4.0
    min_siblings: int = 8
    min_history: int = 3


@dataclass(frozen=True)
class FleetSkills:
    """What the gate step read from the registry for the rule: the siblings' champions' skills and the city's own.

    Attributes:
        siblings: The skill of each sibling city's current champion (one per city).
        history: The skills of the city's past promoted versions (the challenger excluded).
    """

    siblings: tuple[float, ...]
    history: tuple[float, ...] = ()


@dataclass(frozen=True)
class FleetResult:
    """The rule's figures, recorded as the decision's ``fleet``.

    Attributes:
        applied: Whether the rule judged the challenger (False: ``note`` says why not).
        siblings: Sibling champions with a skill.
        median: The siblings' median skill.
        spread: The robust spread ``s`` used (after the floor).
        scale_floor: The floor of ``s``.
        z: The challenger's robust z-score.
        max_z: The limit.
        side: ``above`` or ``below`` the fleet when suspect, else None.
        suspect: ``|z| > max_z``.
        history: The city's past promoted versions with a skill.
        history_median: Their median skill, or None.
        history_z: That median's z-score against the same fleet, or None.
        explained: The city's own history explains a suspect challenger.
        challenger_skill: The challenger's skill over the naive baseline.
        note: Why the rule was not applied, or how the history explains it; empty otherwise.
    """

    applied: bool
    siblings: int
    max_z: float
    challenger_skill: float | None = None
    median: float | None = None
    spread: float | None = None
    scale_floor: float = SCALE_FLOOR
    z: float | None = None
    side: str | None = None
    suspect: bool = False
    history: int = 0
    history_median: float | None = None
    history_z: float | None = None
    explained: bool = False
    note: str = ""

    @property
    def refuses(self) -> bool:
        """A suspect challenger that the city's history does not explain."""
        return self.applied and self.suspect and not self.explained

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> FleetResult | None:
        """The result back from a decision record's ``fleet`` (after a JSON round trip)."""
        if data is None:
            return None
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def evaluate(challenger_skill: float, skills: FleetSkills, rule: FleetOutlier) -> FleetResult:
    """Judge the challenger's skill against its siblings' (and, when suspect, against the city's own history)."""
    siblings = [s for s in skills.siblings if math.isfinite(s)]
    history = [h for h in skills.history if math.isfinite(h)]
    common: dict[str, Any] = {"siblings": len(siblings), "max_z": rule.max_z, "history": len(history)}
    if not math.isfinite(challenger_skill):
        note = "not applied: the challenger's skill over the naive baseline cannot be measured"
        return FleetResult(applied=False, note=note, **common)
    if len(siblings) < rule.min_siblings:
        note = (
            f"not applied: {len(siblings)} sibling champion(s) with a skill, fewer than min_siblings "
            f"{rule.min_siblings}"
        )
        return FleetResult(applied=False, challenger_skill=challenger_skill, note=note, **common)
    median = statistics.median(siblings)
    spread = max(MAD_TO_SD * statistics.median(abs(s - median) for s in siblings), SCALE_FLOOR)
    z = (challenger_skill - median) / spread
    suspect = abs(z) > rule.max_z
    side = ("above" if z > 0 else "below") if suspect else None
    history_median = statistics.median(history) if history else None
    history_z = None if history_median is None else (history_median - median) / spread
    explained, note = False, ""
    if suspect and history_median is not None and history_z is not None and len(history) >= rule.min_history:
        same_side = (history_z > 0) == (z > 0)
        far_too = abs(history_z) >= rule.max_z / 2
        close_to_own = abs(challenger_skill - history_median) <= rule.max_z * spread
        explained = same_side and far_too and close_to_own
        if explained:
            note = (
                f"explained by the city's own history: the median skill {history_median:.3g} of its "
                f"{len(history)} promoted versions lies {side} the fleet too (z {history_z:+.2f})"
            )
    elif suspect:
        note = (
            f"the city's own history ({len(history)} promoted version(s), min_history {rule.min_history}) is too short"
        )
    return FleetResult(
        applied=True,
        challenger_skill=challenger_skill,
        median=median,
        spread=spread,
        z=z,
        side=side,
        suspect=suspect,
        history_median=history_median,
        history_z=history_z,
        explained=explained,
        note=note,
        **common,
    )


def refusal(result: FleetResult) -> str:
    """Why a suspect challenger is refused, with the fleet's median and spread and which side it lies on."""
    why = (
        "so much better than the fleet suggests a leak or a broken holdout"
        if result.side == "above"
        else "so much worse than the fleet suggests broken data or features for this city"
    )
    own = result.note or (
        f"the city's own history (median {result.history_median:.3g} of {result.history} promoted versions) "
        "does not explain it"
        if result.history_median is not None
        else "the city has no promoted history"
    )
    return (
        f"challenger skill {result.challenger_skill:.3g} over the naive baseline lies far {result.side} its "
        f"{result.siblings} sibling champions (median {result.median:.3g}, spread {result.spread:.3g}): robust z "
        f"{result.z:+.2f} beyond +-{result.max_z:g} (fleet_outlier); {why}; {own}; champion kept"
    )
