"""The promotion gate's decision, as a pure function of scores and thresholds."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class GateDecision:
    """What the gate decided and why; recorded as version tags and a JSON artifact."""

    promote: bool
    reason: str
    challenger_score: float
    champion_score: float | None
    improvement: float | None
    min_improvement: float
    improvement_mode: str
    direction: str
    holdout_rows: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form."""
        return asdict(self)


def decide(
    challenger_score: float,
    champion_score: float | None,
    *,
    direction: Literal["minimize", "maximize"],
    min_improvement: float = 0.0,
    improvement_mode: Literal["relative", "absolute"] = "relative",
    holdout_rows: int,
    min_holdout_rows: int = 1,
) -> GateDecision:
    """Decide whether the challenger replaces the champion.

    Both scores must come from the same holdout. The challenger is promoted when there is no
    champion yet, or when it is strictly better and its improvement reaches ``min_improvement``
    (a fraction of the champion's score when relative). Anything else keeps the champion.
    """

    def decision(promote: bool, reason: str, improvement: float | None = None) -> GateDecision:
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
        )

    if holdout_rows < min_holdout_rows:
        return decision(False, f"holdout has {holdout_rows} rows, fewer than the {min_holdout_rows} required")
    if not math.isfinite(challenger_score):
        return decision(False, f"challenger score {challenger_score!r} is not a finite number")
    if champion_score is None:
        return decision(True, "no champion yet: the first valid model becomes champion")
    if not math.isfinite(champion_score):
        return decision(
            True, f"the champion cannot be scored on this holdout ({champion_score!r}); challenger promoted"
        )
    gain = champion_score - challenger_score if direction == "minimize" else challenger_score - champion_score
    improvement = gain / abs(champion_score) if improvement_mode == "relative" and champion_score != 0 else gain
    unit = "%" if improvement_mode == "relative" else ""
    scale = 100.0 if improvement_mode == "relative" else 1.0
    shown = f"{improvement * scale:+.3g}{unit}"
    needed = f"{min_improvement * scale:.3g}{unit}"
    if gain <= 0:
        return decision(False, f"challenger is not better than the champion ({shown}); champion kept", improvement)
    if improvement < min_improvement:
        return decision(False, f"improvement {shown} is below the required {needed}; champion kept", improvement)
    return decision(True, f"challenger beats the champion by {shown} (required {needed})", improvement)


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
