"""Promotion modes: what a run does with the gate's decision. Pure Python: the trigger form imports :data:`MODES`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow_ml.ml.demotion_guard import Demotion
    from airflow_ml.ml.gate.records import GateDecision

#: Promotion modes a run can be triggered with.
MODES = ("auto", "require_approval", "shadow", "force", "dry_run")
#: The modes a template may make its runs' default (``gate.promotion_mode``): those that need no reason.
DEFAULT_MODES = ("auto", "require_approval", "shadow")

#: The decision label of a run whose gate recommends promotion and which waits for a person.
AWAITING_APPROVAL = "awaiting-approval"
#: The decision label of a run whose gate would promote, in shadow: ``champion`` stays, ``challenger`` is shadow-scored.
SHADOW = "shadow"


@dataclass(frozen=True)
class Outcome:
    """What a run does with the gate's decision, given its promotion mode."""

    label: str
    move_champion: bool
    reason: str
    #: The after-demotion rule that changed what the run does (:meth:`Demotion.sentence`), or None.
    after_demotion: str | None = None


def check_mode(mode: str, trigger_reason: str = "") -> None:
    """Refuse an unknown mode, and a forced promotion without a reason to record.

    Raises:
        ValueError: naming the mode and the fix.
    """
    if mode not in MODES:
        raise ValueError(f"unknown promotion mode {mode!r}; choose one of {list(MODES)}")
    if mode == "force" and not trigger_reason.strip():
        raise ValueError("promotion mode 'force' needs a reason: fill in the trigger form's Reason, it is recorded")


def apply_mode(
    decision: GateDecision,
    mode: str,
    trigger_reason: str = "",
    *,
    has_champion: bool = True,
    demotion: Demotion | None = None,
) -> Outcome:
    """Turn the gate's decision into what the run does.

    ``auto`` follows it; ``require_approval`` waits for a person before following a recommendation to
    promote; ``shadow`` keeps ``champion`` where it is and leaves the winning challenger under its
    ``challenger`` alias, to be compared on live rows (a first model, with no champion to shadow, is
    promoted as in ``auto``); ``force`` promotes anyway (recorded as forced, with the trigger's reason);
    ``dry_run`` records it and moves nothing.

    ``demotion`` is the city's active demotion (:mod:`airflow_ml.ml.demotion_guard`): while it holds, an
    ``auto`` run that would promote does what the demotion requires instead (approval, shadow, or nothing
    until its end), and the outcome names the rule in ``after_demotion``.
    """
    check_mode(mode, trigger_reason)
    would = "promoted" if decision.promote else "kept the champion"
    if mode == "auto" and decision.promote and demotion is not None:
        return _after_demotion(decision, demotion, has_champion=has_champion)
    if mode == "require_approval" and decision.promote:
        return Outcome(
            AWAITING_APPROVAL, False, f"the gate recommends promotion, waiting for approval: {decision.reason}"
        )
    if mode == "shadow" and decision.promote:
        if not has_champion:
            return Outcome("promoted", True, f"shadow mode, but no champion to shadow: {decision.reason}")
        return Outcome(SHADOW, False, f"{_IN_SHADOW}: {decision.reason}")
    if mode == "dry_run":
        return Outcome("dry-run", False, f"dry run, nothing moved; the gate would have {would}: {decision.reason}")
    if mode == "force":
        reason = (
            f"forced by the trigger ({trigger_reason.strip()}); the gate alone would have {would}: {decision.reason}"
        )
        return Outcome("forced", True, reason)
    return Outcome("promoted" if decision.promote else "kept", decision.promote, decision.reason)


_IN_SHADOW = (
    "shadow: the gate would have promoted; champion stays, the challenger is shadow-scored until the monitor's "
    "live comparison promotes it or not"
)


def _after_demotion(decision: GateDecision, demotion: Demotion, *, has_champion: bool) -> Outcome:
    """What an ``auto`` run whose gate would promote does while ``demotion`` is active."""
    rule = demotion.sentence()
    if demotion.requires == "cooldown":
        reason = f"{rule}: no promotion before then; the gate alone would have promoted: {decision.reason}"
        return Outcome("kept", False, reason, rule)
    if demotion.requires == "shadow" and has_champion:
        return Outcome(SHADOW, False, f"{rule}; {_IN_SHADOW}: {decision.reason}", rule)
    # require_approval, or shadow with no champion to shadow against: a person decides.
    reason = f"{rule}; the gate recommends promotion, waiting for approval: {decision.reason}"
    return Outcome(AWAITING_APPROVAL, False, reason, rule)
