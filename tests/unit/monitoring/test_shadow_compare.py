"""The live comparison of a challenger in shadow (airflow_ml.monitoring.shadow_compare), on simulated live rows.

Each day's rows share an error of both models (the day's weather, events), so rows within a day correlate and
the bootstrap resamples days (:func:`tests.support.shadow_rows.live_rows`). Every simulation has a fixed seed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from airflow_ml.ml.steps.step_settings import ShadowSettings
from airflow_ml.monitoring.shadow_compare import ShadowColumns, compare_shadow
from tests.support.shadow_rows import live_rows

SETTINGS = ShadowSettings(
    min_improvement=0.02,
    min_labels=1000,
    min_days=7,
    max_slice_regression=0.1,
    slices=({"column": "zone", "bins": None},),
    resamples=500,
)


@pytest.mark.parametrize("seed", range(40))
def test_an_identical_challenger_is_never_promoted(seed: int) -> None:
    verdict = compare_shadow(live_rows(seed, challenger_sd=None), "rmse", SETTINGS)

    assert verdict.promote is False
    assert verdict.rule == "min_improvement"
    assert verdict.improvement == 0.0
    assert verdict.interval == (0.0, 0.0)


def test_an_identical_challenger_is_not_promoted_even_with_no_required_margin() -> None:
    verdict = compare_shadow(live_rows(0, challenger_sd=None), "mae", ShadowSettings(min_improvement=0.0))

    assert (verdict.promote, verdict.rule) == (False, "bootstrap")
    assert "includes 0" in verdict.reason


def test_a_challenger_as_good_as_the_champion_is_rarely_promoted_over_many_seeds() -> None:
    # Not the same predictions: independent errors of the same size. The 2% margin and the interval over days
    # keep it out in 96 of 100 seeds (the interval's one-sided tail is 2.5% at 95%; see _interval).
    verdicts = [compare_shadow(live_rows(seed), "rmse", SETTINGS) for seed in range(100)]

    assert len([v for v in verdicts if v.promote]) <= 4
    assert {v.rule for v in verdicts} == {"min_improvement", "bootstrap", "passed"}


def test_a_single_day_is_never_enough_since_the_interval_resamples_days() -> None:
    rows = live_rows(4, days=1, per_day=3000, challenger_sd=1.0)

    verdict = compare_shadow(rows, "rmse", ShadowSettings(min_days=1))

    assert (verdict.promote, verdict.rule) == (False, "min_evidence")
    assert "1 day of the 2 the interval needs" in verdict.reason


def test_a_clearly_better_challenger_is_promoted_once_evidence_suffices_and_not_before() -> None:
    rows = live_rows(7, days=14, per_day=100, challenger_sd=2.0)
    days = sorted(rows["day"].unique())

    def on(first_days: int) -> object:
        return compare_shadow(rows[rows["day"].isin(days[:first_days])], "rmse", SETTINGS)

    both_short, labels_short, enough = on(5), on(8), on(12)

    assert (both_short.promote, both_short.rule) == (False, "min_evidence")
    assert "500 labelled rows of the 1000 required (min_labels) and 5 days of the 7 required (min_days)" in (
        both_short.reason
    )
    assert both_short.interval is None
    assert (labels_short.promote, labels_short.rule) == (False, "min_evidence")
    assert "800 labelled rows of the 1000 required (min_labels); champion kept" in labels_short.reason
    assert "min_days" not in labels_short.reason
    days_short = compare_shadow(rows[rows["day"].isin(days[:5])], "rmse", ShadowSettings(min_labels=100))
    assert "5 days of the 7 required (min_days)" in days_short.reason
    assert "min_labels" not in days_short.reason
    assert enough.promote is True, enough.reason
    assert enough.rule == "passed"
    assert (enough.labels, enough.days) == (1200, 12)
    assert enough.interval is not None
    assert enough.interval[0] > 0
    assert enough.improvement is not None
    assert enough.improvement > 0.02
    assert enough.challenger_score < enough.champion_score  # type: ignore[operator]
    assert "over 12 days, 95% CI over 12 days" in enough.reason


def test_a_challenger_worse_on_one_slice_is_refused_naming_the_slice() -> None:
    verdict = compare_shadow(live_rows(3, challenger_sd=1.0, worse_zone="belem"), "mae", SETTINGS)

    assert (verdict.promote, verdict.rule) == (False, "max_slice_regression")
    assert verdict.improvement is not None
    assert verdict.improvement > 0.02
    assert "worse on slice zone=belem" in verdict.reason
    assert [s.name for s in verdict.slices if s.breached] == ["zone=belem"]
    assert verdict.to_dict()["slices"][1]["value"] == "baixa"


def test_rows_without_a_label_do_not_count_and_the_same_seed_gives_the_same_verdict() -> None:
    rows = live_rows(11, challenger_sd=2.0)
    unlabelled = rows.assign(label=np.nan, prediction_id=rows["prediction_id"] + "-new")

    verdict = compare_shadow(pd.concat([rows, unlabelled]), "rmse", SETTINGS)

    assert verdict.labels == len(rows)
    assert verdict == compare_shadow(rows, "rmse", SETTINGS)
    assert verdict.to_dict()["interval"] == list(verdict.interval or ())


def test_the_interval_resamples_days_so_one_lucky_day_is_not_enough() -> None:
    # The challenger is better by a wide margin on one day and identical on the thirteen others.
    rows = live_rows(5, challenger_sd=None)
    lucky = rows["day"] == rows["day"].min()
    rows.loc[lucky, "challenger"] = rows.loc[lucky, "label"]

    verdict = compare_shadow(rows, "mae", ShadowSettings(min_improvement=0.0, resamples=1000))

    assert verdict.improvement is not None
    assert verdict.improvement > 0.05
    assert (verdict.promote, verdict.rule) == (False, "bootstrap")
    assert verdict.interval is not None
    assert verdict.interval[0] <= 0


@pytest.mark.parametrize("metric", ["r2", "mape", "logloss", "auc"])
def test_every_metric_promotes_a_clearly_better_challenger(metric: str) -> None:
    rows = live_rows(9, challenger_sd=1.0)
    if metric in ("logloss", "auc"):
        late = (rows["label"] > rows["label"].median()).astype(float)
        squash = 1 / (1 + np.exp(-(rows[["champion", "challenger"]] - rows["label"].median()) / 4))
        rows = rows.assign(label=late, champion=squash["champion"], challenger=squash["challenger"])

    verdict = compare_shadow(rows, metric, ShadowSettings(resamples=300))

    assert verdict.promote is True, verdict.reason


def test_other_column_names_can_be_named() -> None:
    rows = live_rows(2, challenger_sd=2.0).rename(columns={"champion": "v3", "challenger": "v4", "day": "date"})

    verdict = compare_shadow(rows, "rmse", SETTINGS, columns=ShadowColumns(day="date", champion="v3", challenger="v4"))

    assert verdict.promote is True


@pytest.mark.parametrize(
    ("change", "metric", "fragment"),
    [
        (lambda f: f.drop(columns=["challenger"]), "rmse", r"lack column\(s\) \['challenger'\]; they have"),
        (lambda f: f.drop(columns=["zone"]), "rmse", r"lack column\(s\) \['zone'\]"),
        (lambda f: pd.concat([f, f.head(2)]), "rmse", r"2 prediction id\(s\) appear more than once"),
        (lambda f: f, "rsme", "unknown metric 'rsme' for the shadow comparison; choose from"),
    ],
)
def test_bad_rows_are_refused_naming_what_and_the_fix(change: object, metric: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        compare_shadow(change(live_rows(1)), metric, SETTINGS)  # type: ignore[operator]
