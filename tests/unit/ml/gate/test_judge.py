"""Unit tests of the promotion gate's decision (airflow_ml.ml.gate.judge.decide) and of the promotion modes."""

from __future__ import annotations

import json
import math

import pytest

from airflow_ml.ml.gate import judge
from airflow_ml.ml.gate.records import GateDecision
from airflow_ml.ml.gate.rules import GateRules

ROWS = {"holdout_rows": 1000, "min_holdout_rows": 100}


def decide(challenger: float, champion: float | None, *, direction: str, holdout_rows: int, **rules) -> GateDecision:
    """The gate's decision with its rules given as keywords (the fields of :class:`GateRules`)."""
    return judge.decide(challenger, champion, direction=direction, holdout_rows=holdout_rows, rules=GateRules(**rules))


def test_no_champion_promotes() -> None:
    decision = decide(5.0, None, direction="minimize", min_improvement=0.05, **ROWS)

    assert decision.promote is True
    assert "no champion" in decision.reason
    assert decision.champion_score is None
    assert decision.improvement is None


def test_better_by_more_than_threshold_promotes() -> None:
    champion, challenger, threshold = 10.0, 9.0, 0.05
    decision = decide(challenger, champion, direction="minimize", min_improvement=threshold, **ROWS)

    assert decision.promote is True
    assert decision.improvement == pytest.approx((champion - challenger) / champion)
    assert decision.improvement > threshold
    assert decision.challenger_score == challenger
    assert decision.champion_score == champion


def test_improvement_exactly_at_threshold_promotes() -> None:
    # 4 -> 3 is exactly a 25% gain, representable without rounding
    decision = decide(3.0, 4.0, direction="minimize", min_improvement=0.25, **ROWS)

    assert decision.promote is True


def test_better_but_under_threshold_keeps_and_says_what_was_required() -> None:
    decision = decide(9.95, 10.0, direction="minimize", min_improvement=0.02, **ROWS)

    assert decision.promote is False
    assert decision.improvement is not None
    assert 0 < decision.improvement < 0.02
    assert "required" in decision.reason
    assert "2%" in decision.reason  # 0.02 relative shown as a percentage
    assert "kept" in decision.reason


def test_worse_challenger_keeps() -> None:
    decision = decide(11.0, 10.0, direction="minimize", min_improvement=0.0, **ROWS)

    assert decision.promote is False
    assert decision.improvement is not None
    assert decision.improvement < 0
    assert "not better" in decision.reason


def test_exact_tie_with_zero_threshold_keeps() -> None:
    decision = decide(7.25, 7.25, direction="minimize", min_improvement=0.0, **ROWS)

    assert decision.promote is False
    assert decision.improvement == 0


@pytest.mark.parametrize(("challenger", "promote"), [(0.90, True), (0.80, False), (0.85, False)])
def test_maximize_metric_direction(challenger: float, promote: bool) -> None:
    decision = decide(challenger, 0.85, direction="maximize", min_improvement=0.01, **ROWS)

    assert decision.promote is promote
    assert decision.direction == "maximize"
    if challenger != 0.85:
        assert (decision.improvement > 0) is (challenger > 0.85)


def test_minimize_and_maximize_disagree_on_the_same_scores() -> None:
    lower = decide(0.7, 0.8, direction="minimize", **ROWS)
    higher = decide(0.7, 0.8, direction="maximize", **ROWS)

    assert lower.promote is True
    assert higher.promote is False


def test_absolute_mode_compares_the_raw_gain() -> None:
    # a gain of 0.3 is 30% relative but below an absolute threshold of 0.5
    kept = decide(0.7, 1.0, direction="minimize", min_improvement=0.5, improvement_mode="absolute", **ROWS)
    promoted = decide(0.4, 1.0, direction="minimize", min_improvement=0.5, improvement_mode="absolute", **ROWS)
    relative = decide(0.7, 1.0, direction="minimize", min_improvement=0.5, improvement_mode="relative", **ROWS)

    assert kept.promote is False
    assert kept.improvement == pytest.approx(0.3)
    assert "%" not in kept.reason
    assert promoted.promote is True
    assert promoted.improvement == pytest.approx(0.6)
    assert relative.promote is False
    assert kept.improvement_mode == "absolute"


def test_absolute_mode_is_independent_of_the_champion_scale() -> None:
    small = decide(1.0, 2.0, direction="minimize", min_improvement=0.5, improvement_mode="absolute", **ROWS)
    large = decide(99.0, 100.0, direction="minimize", min_improvement=0.5, improvement_mode="absolute", **ROWS)

    assert small.improvement == pytest.approx(large.improvement)
    assert small.promote is large.promote is True


def test_relative_mode_with_a_zero_champion_uses_the_raw_gain() -> None:
    decision = decide(0.1, 0.0, direction="maximize", min_improvement=0.05, **ROWS)

    assert decision.promote is True
    assert math.isfinite(decision.improvement)


def test_holdout_too_small_keeps_even_without_champion() -> None:
    decision = decide(1.0, None, direction="minimize", holdout_rows=50, min_holdout_rows=100)

    assert decision.promote is False
    assert "50" in decision.reason
    assert "100" in decision.reason
    assert decision.holdout_rows == 50


def test_holdout_of_exactly_the_minimum_is_enough() -> None:
    assert decide(1.0, None, direction="minimize", holdout_rows=100, min_holdout_rows=100).promote is True


@pytest.mark.parametrize("score", [math.nan, math.inf, -math.inf])
def test_non_finite_challenger_keeps(score: float) -> None:
    with_champion = decide(score, 10.0, direction="minimize", **ROWS)
    without_champion = decide(score, None, direction="maximize", **ROWS)

    assert with_champion.promote is False
    assert without_champion.promote is False
    assert "finite" in with_champion.reason


def test_decision_is_json_serialisable() -> None:
    decision = decide(9.0, 10.0, direction="minimize", min_improvement=0.01, **ROWS)

    data = json.loads(json.dumps(decision.to_dict()))

    assert data["promote"] is True
    assert data["min_improvement"] == 0.01
    assert data["improvement_mode"] == "relative"
    assert data["holdout_rows"] == ROWS["holdout_rows"]
    assert GateDecision.from_dict(data) == decision


def _decision(promote: bool):
    champion = 10.0
    challenger = 9.0 if promote else 11.0
    return decide(challenger, champion, direction="minimize", min_improvement=0.01, holdout_rows=500)


def test_auto_mode_follows_the_gate() -> None:
    from airflow_ml.ml.gate.modes import apply_mode

    assert apply_mode(_decision(True), "auto").move_champion is True
    kept = apply_mode(_decision(False), "auto")
    assert (kept.label, kept.move_champion) == ("kept", False)


def test_dry_run_moves_nothing_and_says_what_would_have_happened() -> None:
    from airflow_ml.ml.gate.modes import apply_mode

    outcome = apply_mode(_decision(True), "dry_run")
    assert (outcome.label, outcome.move_champion) == ("dry-run", False)
    assert "would have promoted" in outcome.reason


def test_force_promotes_a_refused_challenger_and_records_the_trigger_reason() -> None:
    from airflow_ml.ml.gate.modes import apply_mode

    outcome = apply_mode(_decision(False), "force", "hotfix for the new zones")
    assert (outcome.label, outcome.move_champion) == ("forced", True)
    assert "hotfix for the new zones" in outcome.reason
    assert "would have kept the champion" in outcome.reason


def test_require_approval_waits_only_when_the_gate_would_promote() -> None:
    from airflow_ml.ml.gate.modes import AWAITING_APPROVAL, apply_mode

    asked = apply_mode(_decision(True), "require_approval")
    assert (asked.label, asked.move_champion) == (AWAITING_APPROVAL, False)
    assert "waiting for approval" in asked.reason
    not_asked = apply_mode(_decision(False), "require_approval")
    assert (not_asked.label, not_asked.move_champion) == ("kept", False)


@pytest.mark.parametrize(("mode", "reason", "fragment"), [("force", "  ", "needs a reason"), ("yolo", "", "'yolo'")])
def test_bad_modes_are_refused(mode: str, reason: str, fragment: str) -> None:
    from airflow_ml.ml.gate.modes import check_mode

    with pytest.raises(ValueError, match=fragment):
        check_mode(mode, reason)


def test_an_implausibly_large_improvement_is_refused_when_max_improvement_is_set() -> None:
    plausible = decide(9.0, 10.0, direction="minimize", max_improvement=0.3, **ROWS)
    at_the_limit = decide(7.0, 10.0, direction="minimize", max_improvement=0.3, **ROWS)
    implausible = decide(5.0, 10.0, direction="minimize", max_improvement=0.3, **ROWS)
    off = decide(5.0, 10.0, direction="minimize", **ROWS)

    assert plausible.promote is at_the_limit.promote is off.promote is True
    assert implausible.promote is False
    assert implausible.refused_by == "max_improvement"
    assert "improvement +50% is above the plausible maximum 30% (max_improvement)" in implausible.reason
    assert implausible.improvement == pytest.approx(0.5)
    # The record holds every rule as applied, so a new rule is recorded without touching GateDecision.
    recorded = GateDecision.from_dict(json.loads(json.dumps(implausible.to_dict())))
    assert recorded.rules is not None
    assert recorded.rules["max_improvement"] == 0.3


def test_max_improvement_is_in_the_unit_of_the_improvement_mode() -> None:
    absolute = decide(5.0, 10.0, direction="minimize", improvement_mode="absolute", max_improvement=3.0, **ROWS)

    assert absolute.refused_by == "max_improvement"
    assert "improvement +5 is above the plausible maximum 3 (max_improvement)" in absolute.reason


def test_max_improvement_does_not_judge_a_first_model() -> None:
    assert decide(5.0, None, direction="minimize", max_improvement=0.01, **ROWS).promote is True
