"""The fleet-outlier rule (airflow_ml.ml.gate.fleet_outlier) and its check in the judge: fixed-seed simulated fleets."""

from __future__ import annotations

import numpy as np
import pytest

from airflow_ml.ml.gate import fleet_outlier
from airflow_ml.ml.gate.fleet_outlier import FleetOutlier, FleetResult, FleetSkills, evaluate
from airflow_ml.ml.gate.judge import decide, judge
from airflow_ml.ml.gate.naive_baseline import NaiveBaseline
from airflow_ml.ml.gate.records import GateDecision
from airflow_ml.ml.gate.rules import GateRules

RULE = FleetOutlier(max_z=4.0, min_siblings=8, min_history=3)


def siblings(n: int = 10, centre: float = 0.3, sd: float = 0.02, seed: int = 14) -> tuple[float, ...]:
    """``n`` sibling champions' skills around ``centre`` (a fixed seed)."""
    return tuple(float(v) for v in np.random.default_rng(seed).normal(centre, sd, n))


def test_a_planted_outlier_is_suspect_above_the_fleet_and_a_normal_challenger_is_not() -> None:
    fleet = FleetSkills(siblings())

    outlier = evaluate(0.95, fleet, RULE)
    normal = evaluate(0.32, fleet, RULE)

    assert (outlier.applied, outlier.suspect, outlier.side, outlier.refuses) == (True, True, "above", True)
    assert outlier.siblings == 10
    assert outlier.median == pytest.approx(float(np.median(fleet.siblings)))
    assert outlier.z is not None
    assert outlier.z > 20
    assert (normal.suspect, normal.refuses, normal.side) == (False, False, None)
    assert normal.z is not None
    assert abs(normal.z) < RULE.max_z
    assert "suggests a leak" in fleet_outlier.refusal(outlier)


def test_far_below_the_fleet_is_suspect_too_and_the_reason_says_below() -> None:
    result = evaluate(-0.4, FleetSkills(siblings()), RULE)

    assert (result.side, result.refuses) == ("below", True)
    reason = fleet_outlier.refusal(result)
    assert "lies far below its 10 sibling champions" in reason
    assert "broken data or features" in reason
    assert "no promoted history" not in reason  # it has none: the note says so
    assert "too short" in reason


def test_a_city_whose_own_history_is_as_far_from_the_fleet_is_explained() -> None:
    fleet = siblings()

    explained = evaluate(0.95, FleetSkills(fleet, history=(0.9, 0.93, 0.97)), RULE)
    short = evaluate(0.95, FleetSkills(fleet, history=(0.9, 0.93)), RULE)
    other_side = evaluate(0.95, FleetSkills(fleet, history=(-0.4, -0.3, -0.35)), RULE)
    near_fleet = evaluate(0.95, FleetSkills(fleet, history=(0.3, 0.31, 0.29)), RULE)

    assert (explained.suspect, explained.explained, explained.refuses) == (True, True, False)
    assert explained.history == 3
    assert explained.history_median == pytest.approx(0.93)
    assert "explained by the city's own history" in explained.note
    assert (short.explained, other_side.explained, near_fleet.explained) == (False, False, False)
    assert "does not explain it" in fleet_outlier.refusal(near_fleet)


def test_a_history_far_out_but_far_from_the_challenger_explains_nothing() -> None:
    # The city was always ~0.6 above the fleet's 0.3, but the challenger jumps to 1.5: beyond max_z * s of its own.
    result = evaluate(1.5, FleetSkills(siblings(), history=(0.6, 0.62, 0.61)), RULE)

    assert (result.suspect, result.explained) == (True, False)


def test_too_few_siblings_the_rule_is_not_applied_and_the_record_says_so() -> None:
    result = evaluate(0.95, FleetSkills(siblings(7)), RULE)

    assert (result.applied, result.refuses, result.siblings) == (False, False, 7)
    assert result.note == "not applied: 7 sibling champion(s) with a skill, fewer than min_siblings 8"


def test_alike_siblings_use_the_scale_floor() -> None:
    result = evaluate(0.33, FleetSkills((0.3,) * 10), RULE)

    assert (result.spread, result.scale_floor) == (0.01, 0.01)
    assert result.z == pytest.approx(3.0)
    assert not result.suspect


def test_the_judge_refuses_by_fleet_outlier_and_records_the_figures() -> None:
    rules = GateRules(naive_baseline=NaiveBaseline(), fleet_outlier=RULE)
    y = np.linspace(0, 10, 200)
    training = np.linspace(0, 10, 400)
    # Skill over predicting the mean: ~0.95 for a near-perfect model, against siblings around 0.3.
    near_perfect = y + np.random.default_rng(0).normal(0, 0.05, y.size)

    decision = judge(
        "rmse", y, near_perfect, None, rules=rules, training_target=training, fleet_skills=FleetSkills(siblings())
    )

    assert (decision.promote, decision.refused_by) == (False, "fleet_outlier")
    assert decision.fleet is not None
    assert decision.fleet.side == "above"
    record = decision.to_dict()
    assert {"siblings", "median", "spread", "z", "history_median", "explained", "applied"} <= set(record["fleet"])
    assert GateDecision.from_dict(record).fleet == decision.fleet


def test_the_judge_records_fleet_as_not_applied_without_the_naive_baseline() -> None:
    rules = GateRules(fleet_outlier=RULE)
    y = np.linspace(0, 10, 50)

    decision = judge("rmse", y, y, None, rules=rules, fleet_skills=FleetSkills(siblings()))

    assert decision.promote
    assert decision.fleet == FleetResult(False, 0, 4.0, note="not applied: naive_baseline is off")


def test_a_suspect_challenger_is_refused_before_the_champion_is_considered() -> None:
    rules = GateRules(fleet_outlier=RULE)
    suspect = evaluate(0.95, FleetSkills(siblings()), RULE)

    decision = decide(1.0, 2.0, direction="minimize", rules=rules, holdout_rows=100, fleet=suspect)

    assert decision.refused_by == "fleet_outlier"
    assert decision.reason.endswith("champion kept")
