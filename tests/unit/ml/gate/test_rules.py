"""The gate's rules on synthetic predictions: bootstrap intervals, slices and minimum quality (ml.gate.rules, judge)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from airflow_ml.ml.gate.bootstrap import paired_bootstrap, weighted_scores
from airflow_ml.ml.gate.judge import judge
from airflow_ml.ml.gate.records import GateDecision, slice_summary
from airflow_ml.ml.gate.rules import GateRules, quality_bound
from airflow_ml.ml.metrics import score

N = 3000


BOOTSTRAP = {"resamples": 1000, "confidence": 0.95, "seed": 0}


def _world(seed: int = 7) -> dict[str, np.ndarray]:
    """Ride durations, the champion's errors (RMSE about 3) and three zones."""
    rng = np.random.default_rng(seed)
    y = rng.gamma(4.0, 5.0, N)
    return {
        "y": y,
        "champion_error": rng.normal(0, 3.0, N),
        "other_error": rng.normal(0, 3.0, N),  # independent of the champion's
        "zone": rng.choice(np.array(["alfama", "baixa", "chiado"]), N),
    }


def _rmse(error: np.ndarray) -> float:
    return float(np.sqrt(np.mean(error**2)))


def _judge(world: dict[str, np.ndarray], challenger_error: np.ndarray, **rules: object) -> GateDecision:
    y = world["y"]
    return judge(
        "rmse",
        y,
        y + challenger_error,
        y + world["champion_error"],
        rules=GateRules(**{"min_improvement": 0.001, "bootstrap": BOOTSTRAP, **rules}),  # type: ignore[arg-type]
        columns={"zone": world["zone"]},
    )


def test_a_planted_regression_is_not_promoted() -> None:
    world = _world()

    decision = _judge(world, world["champion_error"] * 1.15)

    assert decision.promote is False
    assert decision.refused_by == "better_than_champion"
    assert decision.improvement == pytest.approx(-0.15)
    assert decision.bootstrap is not None
    assert decision.bootstrap.improvement is not None
    assert decision.bootstrap.improvement[1] < 0  # the whole interval is on the bad side


def test_a_real_improvement_is_promoted_with_its_interval() -> None:
    world = _world()

    decision = _judge(world, world["champion_error"] * 0.8 + world["other_error"] * 0.3)

    assert decision.promote is True, decision.reason
    assert decision.refused_by is None
    assert decision.bootstrap is not None
    assert decision.bootstrap.improvement is not None
    low, high = decision.bootstrap.improvement
    assert 0 < low < decision.improvement < high
    assert "95% CI [" in decision.reason
    challenger_low, challenger_high = decision.bootstrap.challenger
    assert challenger_low < decision.challenger_score < challenger_high


def test_a_tie_within_noise_is_not_promoted_though_the_point_estimate_is_better() -> None:
    world = _world()
    champion_rmse = _rmse(world["champion_error"])
    # Independent errors scaled to be exactly 0.3% better overall: a better point estimate, but noise.
    challenger_error = world["other_error"] * (0.997 * champion_rmse / _rmse(world["other_error"]))

    decision = _judge(world, challenger_error)

    assert decision.improvement == pytest.approx(0.003)
    assert decision.improvement > decision.min_improvement
    assert decision.promote is False
    assert decision.refused_by == "bootstrap"
    assert decision.bootstrap is not None
    assert decision.bootstrap.improvement is not None
    low, high = decision.bootstrap.improvement
    assert low < 0 < high
    assert decision.reason.startswith("tie within noise: improvement 0.3% with 95% CI [")
    assert "includes 0" in decision.reason


def test_without_a_bootstrap_the_same_tie_is_promoted() -> None:
    world = _world()
    challenger_error = world["other_error"] * (0.997 * _rmse(world["champion_error"]) / _rmse(world["other_error"]))

    decision = _judge(world, challenger_error, bootstrap=None)

    assert decision.promote is True
    assert decision.bootstrap is None


def test_a_slice_regression_blocks_promotion_while_the_overall_score_improves() -> None:
    world = _world()
    worse_zone = world["zone"] == "chiado"
    challenger_error = np.where(worse_zone, world["champion_error"] * 1.3, world["champion_error"] * 0.6)

    decision = _judge(world, challenger_error, slices=[{"column": "zone"}], max_slice_regression=0.1)

    assert decision.improvement is not None
    assert decision.improvement > 0.05
    assert decision.bootstrap is not None
    assert decision.bootstrap.improvement is not None
    assert decision.bootstrap.improvement[0] > 0
    assert decision.promote is False
    assert decision.refused_by == "max_slice_regression"
    assert decision.reason.startswith("slice zone=chiado is 30.0% worse than the champion (max 10%)")
    by_value = {s.value: s for s in decision.slices}
    assert set(by_value) == {"alfama", "baixa", "chiado"}
    assert by_value["chiado"].breached
    assert by_value["chiado"].regression == pytest.approx(0.3)
    assert not by_value["alfama"].breached
    assert by_value["alfama"].regression == pytest.approx(-0.4)
    assert sum(s.rows for s in decision.slices) == N


def test_slices_without_a_max_are_reported_but_never_block() -> None:
    world = _world()
    challenger_error = np.where(world["zone"] == "chiado", world["champion_error"] * 1.3, world["champion_error"] * 0.6)

    decision = _judge(world, challenger_error, slices=[{"column": "zone"}])

    assert decision.promote is True
    assert all(not s.judged and not s.breached for s in decision.slices)
    assert {s.value: s.regression for s in decision.slices}["chiado"] == pytest.approx(0.3)


def test_small_slices_are_reported_but_not_judged() -> None:
    world = _world()
    zone = world["zone"].copy()
    zone[:50] = "belem"  # a small zone on which the challenger is awful
    challenger_error = world["champion_error"] * 0.7
    challenger_error[:50] = world["champion_error"][:50] * 3

    decision = _judge(
        {**world, "zone": zone},
        challenger_error,
        slices=[{"column": "zone"}],
        max_slice_regression=0.1,
        min_slice_rows=100,
    )

    assert decision.promote is True, decision.reason
    small = next(s for s in decision.slices if s.value == "belem")
    assert (small.rows, small.judged, small.breached) == (50, False, False)
    assert small.regression is not None
    assert small.regression > 1
    assert all(s.judged for s in decision.slices if s.value != "belem")


def test_min_quality_refuses_a_challenger_above_the_bound_even_when_it_beats_the_champion() -> None:
    world = _world()
    challenger_error = world["champion_error"] * 0.8

    refused = _judge(world, challenger_error, min_quality={"max_rmse": 2.0})
    allowed = _judge(world, challenger_error, min_quality={"max_rmse": 2.5})

    assert refused.promote is False
    assert refused.refused_by == "min_quality"
    assert "above the maximum 2 (min_quality.max_rmse)" in refused.reason
    assert allowed.promote is True


def test_min_quality_applies_to_a_first_model_too() -> None:
    world = _world()
    y = world["y"]
    rules = GateRules(min_quality={"max_rmse": 1.0}, bootstrap=BOOTSTRAP)

    decision = judge("rmse", y, y + world["champion_error"], None, rules=rules)

    assert decision.promote is False
    assert decision.refused_by == "min_quality"
    assert decision.bootstrap is not None
    assert decision.bootstrap.improvement is None


def test_min_quality_of_a_maximized_metric_is_a_minimum() -> None:
    rng = np.random.default_rng(3)
    y = (rng.random(2000) < 0.4).astype(float)
    weak = np.clip(0.5 + (y - 0.5) * 0.2 + rng.normal(0, 0.3, 2000), 0, 1)

    decision = judge("auc", y, weak, None, rules=GateRules(min_quality={"min_auc": 0.9}))

    assert decision.refused_by == "min_quality"
    assert "below the minimum 0.9 (min_quality.min_auc)" in decision.reason


@pytest.mark.parametrize("bound", [{"min_rmse": 1.0}, {"max_mae": 1.0}, {"max_rmse": 1.0, "max_mae": 2.0}])
def test_a_quality_bound_that_does_not_fit_the_metric_is_refused(bound: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"write \{max_rmse: <bound>\}"):
        quality_bound(bound, "rmse", "minimize")


def test_the_same_seed_gives_the_same_interval_and_another_seed_another() -> None:
    world = _world()
    y, champion = world["y"], world["y"] + world["champion_error"]
    challenger = world["y"] + world["other_error"]

    first = paired_bootstrap("rmse", y, challenger, champion, resamples=500, seed=11)
    again = paired_bootstrap("rmse", y, challenger, champion, resamples=500, seed=11)
    other = paired_bootstrap("rmse", y, challenger, champion, resamples=500, seed=12)

    assert first == again
    assert first.improvement != other.improvement


def test_maximized_metrics_count_a_higher_score_as_an_improvement() -> None:
    rng = np.random.default_rng(5)
    y = (rng.random(4000) < 0.5).astype(float)
    good = np.clip(y * 0.6 + rng.random(4000) * 0.4, 0, 1)
    poor = np.clip(y * 0.1 + rng.random(4000) * 0.9, 0, 1)

    result = paired_bootstrap("auc", y, good, poor, resamples=300)

    assert result.improvement is not None
    assert result.improvement[0] > 0
    assert result.champion is not None
    assert result.champion[1] < result.challenger[0]


@pytest.mark.parametrize("metric", ["rmse", "mae", "mape", "r2", "auc", "logloss"])
def test_weights_of_one_give_the_plain_metric(metric: str) -> None:
    rng = np.random.default_rng(2)
    if metric in {"auc", "logloss"}:
        y = (rng.random(500) < 0.3).astype(float)
        p = np.round(np.clip(y * 0.3 + rng.random(500) * 0.7, 0.01, 0.99), 2)  # rounded: ties in the ranks
    else:
        y = rng.gamma(3.0, 4.0, 500)
        p = y + rng.normal(0, 2, 500)

    weighted = weighted_scores(metric, y, p, np.ones((1, 500)))[0]

    assert weighted == pytest.approx(score(metric, y, p), rel=1e-9)


def test_the_decision_with_intervals_and_slices_survives_json_and_summarises_in_one_line() -> None:
    world = _world()
    decision = _judge(world, world["champion_error"] * 0.9, slices=[{"column": "zone"}], max_slice_regression=0.1)

    data = json.loads(json.dumps(decision.to_dict()))

    assert GateDecision.from_dict(data) == decision
    assert data["bootstrap"]["confidence"] == 0.95
    assert len(data["slices"]) == 3
    summary = slice_summary(data)
    assert summary.startswith("3 slice(s) of zone; 3 judged (>= 100 rows); worst zone=")
    assert "0 breached" in summary
    assert len(summary) < 300
