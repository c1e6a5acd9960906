"""Promotion modes (airflow_ml.ml.gate.modes): shadow, and what an ``auto`` win does after a demotion.

The modes ``auto``, ``require_approval``, ``force`` and ``dry_run`` are tested with the judge
(tests/unit/ml/gate/test_judge.py); the gate step applies them on a real registry in
tests/unit/operators/test_gate_operator.py.
"""

from __future__ import annotations

import pytest

from airflow_ml.ml.demotion_guard import Demotion
from airflow_ml.ml.gate.judge import decide
from airflow_ml.ml.gate.modes import AWAITING_APPROVAL, DEFAULT_MODES, MODES, SHADOW, apply_mode
from airflow_ml.ml.gate.records import GateDecision
from airflow_ml.ml.gate.rules import GateRules


def _decision(promote: bool, champion: float | None = 10.0) -> GateDecision:
    challenger = 9.0 if promote else 11.0
    return decide(challenger, champion, direction="minimize", rules=GateRules(min_improvement=0.01), holdout_rows=500)


def _demotion(requires: str, until: str | None = "2026-12-06T00:00:00+00:00") -> Demotion:
    return Demotion("ride_duration.lisbon", "3", "live rmse 31% above holdout", requires, until, "2026-11-29T04:00:00")


def test_shadow_is_a_mode_and_a_template_default_and_force_is_not_a_default() -> None:
    assert SHADOW in MODES
    assert DEFAULT_MODES == ("auto", "require_approval", "shadow")


def test_shadow_keeps_the_champion_and_says_what_the_gate_would_have_done() -> None:
    outcome = apply_mode(_decision(True), "shadow")

    assert (outcome.label, outcome.move_champion, outcome.after_demotion) == (SHADOW, False, None)
    assert outcome.reason.startswith("shadow: the gate would have promoted; champion stays")
    assert "challenger beats the champion by +10% (required 1%)" in outcome.reason


def test_shadow_keeps_a_losing_challenger_as_auto_would() -> None:
    outcome = apply_mode(_decision(False), "shadow")

    assert (outcome.label, outcome.move_champion) == ("kept", False)


def test_shadow_promotes_a_first_model_since_there_is_nothing_to_shadow() -> None:
    outcome = apply_mode(_decision(True, champion=None), "shadow", has_champion=False)

    assert (outcome.label, outcome.move_champion) == ("promoted", True)
    assert outcome.reason.startswith("shadow mode, but no champion to shadow: no champion yet")


@pytest.mark.parametrize(
    ("requires", "label", "fragment"),
    [
        ("require_approval", AWAITING_APPROVAL, "waiting for approval"),
        ("shadow", SHADOW, "champion stays"),
        ("cooldown", "kept", "no promotion before then; the gate alone would have promoted"),
    ],
)
def test_an_auto_win_after_a_demotion_does_what_the_demotion_requires_and_names_the_rule(
    requires: str, label: str, fragment: str
) -> None:
    outcome = apply_mode(_decision(True), "auto", demotion=_demotion(requires))

    assert (outcome.label, outcome.move_champion) == (label, False)
    rule = f"after_demotion: {requires} until 2026-12-06, demoted v3 on 2026-11-29 (live rmse 31% above holdout)"
    assert outcome.after_demotion == rule
    assert outcome.reason.startswith(rule)
    assert fragment in outcome.reason


def test_a_demotion_without_an_end_says_what_ends_it() -> None:
    outcome = apply_mode(_decision(True), "auto", demotion=_demotion("require_approval", until=None))

    assert outcome.after_demotion is not None
    assert "require_approval until a promotion with more evidence clears it" in outcome.after_demotion


def test_a_shadow_requirement_with_no_champion_to_shadow_asks_a_person() -> None:
    outcome = apply_mode(_decision(True, champion=None), "auto", has_champion=False, demotion=_demotion("shadow"))

    assert outcome.label == AWAITING_APPROVAL


@pytest.mark.parametrize("mode", ["require_approval", "shadow", "dry_run"])
def test_a_demotion_changes_only_auto_wins(mode: str) -> None:
    demotion = _demotion("cooldown")

    assert apply_mode(_decision(True), mode, demotion=demotion).after_demotion is None
    assert apply_mode(_decision(False), "auto", demotion=demotion) == apply_mode(_decision(False), "auto")
    forced = apply_mode(_decision(True), "force", "a person decided", demotion=demotion)
    assert (forced.label, forced.move_champion, forced.after_demotion) == ("forced", True, None)
