"""The gate's naive-baseline rule: every challenger, a first one too, must beat a constant learnt from training rows."""

from __future__ import annotations

import json
import math
from dataclasses import fields

import numpy as np
import pytest

from airflow_ml.ml.gate.judge import decide, judge
from airflow_ml.ml.gate.naive_baseline import NaiveBaseline, NaiveBaselineResult, evaluate
from airflow_ml.ml.gate.records import GateDecision
from airflow_ml.ml.gate.rules import GateRules
from airflow_ml.ml.metrics import score, skill
from airflow_ml.templates.gate_spec import GateSpec

RULES = GateRules(naive_baseline=NaiveBaseline())


def _regression(seed: int = 3) -> dict[str, np.ndarray]:
    """Skewed durations: training rows and a holdout from the same law, so mean and median differ."""
    rng = np.random.default_rng(seed)
    return {"train": rng.gamma(2.0, 10.0, 4000), "y": rng.gamma(2.0, 10.0, 1000)}


def test_a_regression_baseline_is_the_training_mean_scored_on_the_holdout() -> None:
    data = _regression()
    good = data["y"] + np.random.default_rng(0).normal(0, 4, 1000)

    result = evaluate("rmse", data["y"], score("rmse", data["y"], good), data["train"], NaiveBaseline())

    assert (result.metric, result.statistic, result.training_rows) == ("rmse", "mean", 4000)
    assert result.value == pytest.approx(data["train"].mean())
    assert result.score == pytest.approx(float(np.sqrt(np.mean((data["y"] - data["train"].mean()) ** 2))))
    # An error metric's skill is the relative improvement over the baseline's score.
    assert result.skill == pytest.approx(1 - score("rmse", data["y"], good) / result.score)
    assert result.skill > 0.5
    assert result.passed is True


def test_the_median_is_the_baseline_when_the_template_says_so() -> None:
    data = _regression()

    mean = evaluate("mae", data["y"], 5.0, data["train"], NaiveBaseline(statistic="mean"))
    median = evaluate("mae", data["y"], 5.0, data["train"], NaiveBaseline(statistic="median"))

    assert median.statistic == "median"
    assert median.value == pytest.approx(float(np.median(data["train"])))
    assert median.value < mean.value  # a right-skewed target: the two constants differ
    assert median.score < mean.score  # and the median is the better constant under absolute error
    assert median.skill < mean.skill  # so the same challenger shows less skill over it


def test_a_binary_baseline_is_the_training_prior_an_auc_of_one_half_and_the_priors_logloss() -> None:
    rng = np.random.default_rng(5)
    train, y = (rng.random(5000) < 0.25).astype(float), (rng.random(2000) < 0.25).astype(float)
    prior = train.mean()

    # median is ignored for a binary metric: the constant is the prior (lint refuses the combination).
    auc = evaluate("auc", y, 0.7, train, NaiveBaseline(statistic="median"))
    logloss = evaluate("logloss", y, 0.5, train, NaiveBaseline())

    assert (auc.statistic, auc.value, auc.score) == ("prior", pytest.approx(prior), 0.5)
    assert auc.skill == pytest.approx((0.7 - 0.5) / (1 - 0.5))  # the share of the gap to a perfect auc
    expected = -np.mean(y * np.log(prior) + (1 - y) * np.log(1 - prior))
    assert logloss.score == pytest.approx(expected)
    assert logloss.skill == pytest.approx(1 - 0.5 / expected)


def test_r2_skill_is_the_share_of_the_gap_to_one_closed() -> None:
    assert skill("r2", 0.6, -0.02) == pytest.approx(0.62 / 1.02)
    assert skill("rmse", 9.0, 10.0) == pytest.approx(0.1)
    assert skill("rmse", 11.0, 10.0) == pytest.approx(-0.1)
    assert math.isnan(skill("rmse", 1.0, 0.0))  # a perfect baseline leaves no skill to measure


def test_a_first_model_worse_than_the_training_mean_is_refused() -> None:
    data = _regression()
    # Predicts every row 15 minutes too long: no model at all would do better.
    useless = data["y"] * 0 + data["train"].mean() + 15

    decision = judge("rmse", data["y"], useless, None, rules=RULES, training_target=data["train"])

    assert decision.promote is False
    assert decision.refused_by == "naive_baseline"
    assert decision.champion_score is None  # a first model: checked all the same
    assert decision.naive_baseline is not None
    assert decision.naive_baseline.skill < 0
    assert decision.reason.startswith(f"challenger rmse {decision.challenger_score:.4g} is not better than the naive")
    assert f"(training mean {data['train'].mean():.4g} for every row) at rmse {decision.naive_baseline.score:.4g}" in (
        decision.reason
    )
    assert decision.reason.endswith("; champion kept")


def test_a_first_model_that_beats_the_mean_is_promoted_saying_by_how_much() -> None:
    data = _regression()
    good = data["y"] + np.random.default_rng(1).normal(0, 4, 1000)

    decision = judge("rmse", data["y"], good, None, rules=RULES, training_target=data["train"])

    assert decision.promote is True
    assert decision.naive_baseline is not None
    assert decision.reason == (
        f"no champion yet: the first valid model becomes champion (skill {decision.naive_baseline.skill:+.1%} "
        "over the naive baseline)"
    )


@pytest.mark.parametrize(("min_skill", "promote"), [(0.0, True), (0.02, True), (0.05, False)])
def test_the_skill_margin_is_required(min_skill: float, promote: bool) -> None:
    # Training mean 10 on a holdout of 0s and 20s: the baseline's rmse is 10, the challenger's 9.7 is 3% better.
    baseline = evaluate("rmse", [0.0, 20.0], 9.7, [5.0, 15.0], NaiveBaseline(min_skill=min_skill))

    decision = decide(9.7, None, direction="minimize", rules=GateRules(), holdout_rows=1000, naive_baseline=baseline)

    assert (baseline.value, baseline.score, baseline.skill) == (10.0, 10.0, pytest.approx(0.03))
    assert decision.promote is promote
    if not promote:
        assert decision.refused_by == "naive_baseline"
        assert "by the required skill 5% (skill +3%); champion kept" in decision.reason


def test_a_tie_with_the_baseline_is_not_beating_it() -> None:
    data = _regression()
    constant = np.full(1000, data["train"].mean())

    decision = judge("rmse", data["y"], constant, None, rules=RULES, training_target=data["train"])

    assert decision.naive_baseline is not None
    assert decision.naive_baseline.skill == 0
    assert (decision.promote, decision.refused_by) == (False, "naive_baseline")


def test_the_rule_comes_after_min_quality_and_before_the_champion() -> None:
    data = _regression()
    useless = np.full(1000, data["train"].mean() + 15)
    worse = np.full(1000, data["train"].mean() + 30)
    bounded = GateRules(min_quality={"max_rmse": 1.0}, naive_baseline=NaiveBaseline())

    first = judge("rmse", data["y"], useless, None, rules=bounded, training_target=data["train"])
    # Better than a worse champion, yet not better than predicting the mean: the baseline refuses it.
    second = judge("rmse", data["y"], useless, worse, rules=RULES, training_target=data["train"])

    assert first.refused_by == "min_quality"
    assert second.champion_score is not None
    assert second.challenger_score < second.champion_score
    assert second.refused_by == "naive_baseline"


def test_the_rule_needs_the_training_target_and_can_be_turned_off() -> None:
    data = _regression()
    off = GateRules(naive_baseline=NaiveBaseline(enabled=False))
    useless = np.full(1000, data["train"].mean() + 15)

    with pytest.raises(ValueError, match="training rows' target"):
        judge("rmse", data["y"], useless, None, rules=RULES)
    decision = judge("rmse", data["y"], useless, None, rules=off)

    assert (decision.promote, decision.naive_baseline) == (True, None)


def test_the_baseline_and_the_skill_are_in_the_record_and_survive_json() -> None:
    data = _regression()
    useless = np.full(1000, data["train"].mean() + 15)
    decision = judge("rmse", data["y"], useless, None, rules=RULES, training_target=data["train"])

    record = json.loads(json.dumps(decision.to_dict()))

    assert record["refused_by"] == "naive_baseline"
    assert set(record["naive_baseline"]) == {f.name for f in fields(NaiveBaselineResult)}
    assert record["naive_baseline"]["score"] == decision.naive_baseline.score  # type: ignore[union-attr]
    assert record["naive_baseline"]["skill"] < 0
    assert GateDecision.from_dict(record) == decision


def test_the_spec_turns_the_rule_on_by_default_and_hands_every_rule_to_gate_rules() -> None:
    rules = GateRules.from_dict({**GateSpec().rules(), "min_holdout_rows": 200})

    assert rules.naive_baseline == NaiveBaseline(enabled=True, statistic="mean", min_skill=0.0)
    assert rules.min_holdout_rows == 200
    assert GateRules.from_dict(rules.to_dict()) == rules
    # A rule the spec gains but GateRules lacks is an error, never silently dropped.
    with pytest.raises(ValueError, match=r"unknown gate rule\(s\) \['max_latency'\]"):
        GateRules.from_dict({**GateSpec().rules(), "max_latency": 3})


def test_median_on_a_binary_metric_is_a_lint_problem() -> None:
    from airflow_ml.templates.models import DatasetSpec

    dataset = DatasetSpec(source="{data_root}/{city}", target="y", time_column="t", features=["x"])
    spec = GateSpec.model_validate({"naive_baseline": {"statistic": "median"}})

    assert any("naive_baseline.statistic: 'median'" in p for p in spec.problems(metric="auc", dataset=dataset))
    assert spec.problems(metric="mae", dataset=dataset) == []
