"""Promotion modes: what a run does with the gate's decision. Pure Python: the trigger form imports :data:`MODES`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow_ml.ml.gate.records import GateDecision

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
