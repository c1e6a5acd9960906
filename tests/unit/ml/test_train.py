"""Unit tests of time splits and LightGBM training (airflow_ml.ml.train); the metrics are in test_metrics.py."""

from __future__ import annotations

import datetime as dt
import tracemalloc
import weakref
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from airflow_ml.data.demo import DEMO_START, generate_day
from airflow_ml.ml.metrics import score
from airflow_ml.ml.serving import Preprocessor, predict_raw
from airflow_ml.ml.train import TRAIN_SAMPLE_ROWS, Splits, TrainSpec, time_split, train_model, train_sample
from tests.support.training_data import binary, booster_on_frames, late_trips, regression, trees


def shuffled_frame(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    times = pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.permutation(n), unit="min")
    return pd.DataFrame({"t": times, "x": rng.normal(size=n)})


def test_time_split_orders_by_time_and_matches_fractions() -> None:
    frame = shuffled_frame(1000)

    splits = time_split(frame, "t", 0.2, 0.1)

    sizes = splits.sizes()
    assert sum(sizes.values()) == len(frame)
    assert sizes["holdout"] == round(len(frame) * 0.1)
    assert sizes["validation"] == round(len(frame) * 0.2)
    assert splits.train["t"].is_monotonic_increasing
    assert splits.train["t"].max() < splits.validation["t"].min()
    assert splits.validation["t"].max() < splits.holdout["t"].min()
    assert splits.holdout["t"].max() == frame["t"].max()
    # rows are kept whole, not only reordered times
    merged = pd.concat([splits.train, splits.validation, splits.holdout])
    pd.testing.assert_frame_equal(merged.sort_values("t", ignore_index=True), frame.sort_values("t", ignore_index=True))


def test_time_split_is_deterministic_with_equal_timestamps() -> None:
    frame = pd.DataFrame({"t": [1, 1, 1, 2, 2, 2, 3, 3, 3, 3], "x": range(10)})

    first = time_split(frame, "t", 0.2, 0.2)
    second = time_split(frame.copy(), "t", 0.2, 0.2)

    pd.testing.assert_frame_equal(first.train, second.train)
    pd.testing.assert_frame_equal(first.holdout, second.holdout)


def test_a_frame_already_in_time_order_is_split_without_a_copy() -> None:
    frame = shuffled_frame(1000).sort_values("t", ignore_index=True)

    splits = time_split(frame, "t", 0.2, 0.1)

    # The splits are views of the frame: a snapshot read in time order is held once, not twice.
    for part in (splits.train, splits.validation, splits.holdout):
        assert np.shares_memory(part["x"].to_numpy(), frame["x"].to_numpy())
    # And they are exactly what the stable sort gives (a copy of the same frame takes that path: not in order).
    sorted_copy = time_split(frame.iloc[::-1], "t", 0.2, 0.1)
    for name in ("train", "validation", "holdout"):
        pd.testing.assert_frame_equal(getattr(splits, name), getattr(sorted_copy, name))


def test_time_split_with_too_few_rows() -> None:
    with pytest.raises(ValueError, match="too few"):
        time_split(shuffled_frame(2), "t", 0.15, 0.15)


def test_time_split_needs_the_time_column() -> None:
    with pytest.raises(ValueError, match="'pickup_at'"):
        time_split(shuffled_frame(100), "pickup_at", 0.15, 0.15)


@pytest.fixture(scope="module")
def trips() -> pd.DataFrame:
    days = [DEMO_START + dt.timedelta(days=i) for i in range(8)]
    return pd.concat([generate_day("lisbon", day, scale=0.5) for day in days], ignore_index=True)


def spec(**overrides: object) -> TrainSpec:
    """The shared small spec of the trips' duration, with 60 rounds unless ``overrides`` say otherwise."""
    return regression(**{"num_boost_round": 60, **overrides})


def test_train_model_is_deterministic(trips: pd.DataFrame) -> None:
    splits = time_split(trips, "pickup_at", 0.15, 0.15)

    first = train_model(splits, spec())
    second = train_model(time_split(trips.copy(), "pickup_at", 0.15, 0.15), spec())

    np.testing.assert_array_equal(
        predict_raw(first.booster, first.preprocessor, splits.holdout),
        predict_raw(second.booster, second.preprocessor, splits.holdout),
    )
    assert first.metrics == second.metrics
    assert first.best_iteration == second.best_iteration


def test_train_model_beats_a_constant_predictor(trips: pd.DataFrame) -> None:
    splits = time_split(trips, "pickup_at", 0.15, 0.15)

    model = train_model(splits, spec())

    holdout = splits.holdout
    constant = np.full(len(holdout), splits.train["duration_min"].mean())
    baseline = score("rmse", holdout["duration_min"], constant)
    predicted = predict_raw(model.booster, model.preprocessor, holdout)
    assert score("rmse", holdout["duration_min"], predicted) < 0.8 * baseline
    assert model.metrics["holdout_rmse"] == pytest.approx(score("rmse", holdout["duration_min"], predicted))
    assert set(model.metrics) == {"train_sample_rmse", "validation_rmse", "holdout_rmse"}
    # The holdout is predicted once: the metric's predictions are the model's, kept for the lineage file.
    assert model.holdout_predictions is not None
    np.testing.assert_array_equal(model.holdout_predictions, predicted)
    assert 1 <= model.best_iteration <= 60
    assert model.learning_curve


def test_the_train_metric_is_scored_on_a_seeded_sample_of_the_training_rows(trips: pd.DataFrame) -> None:
    splits = time_split(trips, "pickup_at", 0.15, 0.15)
    rows = len(splits.train) // 4

    sample = train_sample(splits.train, 42, rows)

    assert len(sample) == rows
    assert sample.index.is_monotonic_increasing  # kept in time order
    assert sample.index.isin(splits.train.index).all()
    pd.testing.assert_frame_equal(sample, train_sample(splits.train, 42, rows))  # seeded
    assert not sample.index.equals(train_sample(splits.train, 7, rows).index)
    assert train_sample(splits.train, 42) is splits.train  # fewer rows than the sample: all of them
    assert len(splits.train) < TRAIN_SAMPLE_ROWS
    model = train_model(splits, spec(seed=42))
    on_sample = predict_raw(model.booster, model.preprocessor, train_sample(splits.train, 42))
    assert model.metrics["train_sample_rmse"] == score("rmse", splits.train["duration_min"], on_sample)


def test_an_unordered_snapshot_trains_the_model_of_the_same_rows_in_time_order(trips: pd.DataFrame) -> None:
    # Splitting without a copy changes nothing of the model: shuffled rows (a sorted copy is split) and rows in
    # time order (split as they are) give the very same booster.
    ordered = trips.sort_values("pickup_at", kind="mergesort", ignore_index=True)
    shuffled = ordered.sample(frac=1.0, random_state=3)

    from_ordered = train_model(time_split(ordered, "pickup_at", 0.15, 0.15), spec())
    from_shuffled = train_model(time_split(shuffled, "pickup_at", 0.15, 0.15), spec())

    assert from_ordered.booster.model_to_string() == from_shuffled.booster.model_to_string()
    assert from_ordered.metrics == from_shuffled.metrics


def test_preprocessor_is_fitted_on_training_rows_only(trips: pd.DataFrame) -> None:
    splits = time_split(trips, "pickup_at", 0.15, 0.15)
    train = splits.train.copy()
    train["pickup_zone"] = train["pickup_zone"].where(train["pickup_zone"] != "belem", None)
    holdout = splits.holdout.copy()
    holdout.loc[holdout.index[:5], "pickup_zone"] = "belem"
    assert (holdout["pickup_zone"] == "belem").any()

    model = train_model(Splits(train, splits.validation, holdout), spec())

    assert "belem" not in model.preprocessor.categories["pickup_zone"]
    assert set(model.preprocessor.categories["pickup_zone"]) == set(train["pickup_zone"].dropna())


def synthetic(n: int, seed: int) -> pd.DataFrame:
    """``n`` rows in time order (``t``) whose ``y`` is ``3 a`` plus ``g``'s effect and a little noise; ``hour`` and
    ``flag`` are noise."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "t": np.arange(n),
            "a": rng.uniform(-2, 2, n),
            "g": rng.choice(["x", "y", "z"], n),
            "hour": rng.integers(0, 24, n),
            "flag": rng.integers(0, 2, n),
        }
    )
    frame["y"] = 3 * frame["a"] + frame["g"].map({"x": 0.0, "y": 4.0, "z": -4.0}) + rng.normal(0, 0.1, n)
    return frame


def test_train_model_learns_a_synthetic_signal() -> None:
    splits = time_split(synthetic(3000, seed=2), "t", 0.15, 0.15)
    small = TrainSpec(features=["a", "g"], categorical=["g"], target="y", num_boost_round=100, num_threads=1)

    model = train_model(splits, small)

    assert model.metrics["holdout_rmse"] < 0.25 * float(splits.holdout["y"].std())


def test_null_target_is_refused_with_its_name(trips: pd.DataFrame) -> None:
    splits = time_split(trips, "pickup_at", 0.15, 0.15)
    train = splits.train.copy()
    train.loc[train.index[3], "duration_min"] = np.nan

    with pytest.raises(ValueError, match="'duration_min'"):
        train_model(Splits(train, splits.validation, splits.holdout), spec())


def test_lightgbm_params_are_reproducible_and_keep_template_params() -> None:
    params = spec(seed=7).lightgbm_params()

    assert params["seed"] == 7
    assert params["deterministic"] is True
    assert params["objective"] == "regression"
    assert params["num_leaves"] == 15
    assert spec(task="binary", metric="auc").lightgbm_params()["objective"] == "binary"


def messy(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with what the matrices must read as LightGBM read the frames: missing numbers and zones, and zones
    the training rows never saw (in the newest rows: validation and holdout)."""
    out = frame.copy()
    rows = np.random.default_rng(11).choice(len(out), len(out) // 10, replace=False)
    out.loc[rows[::2], "distance_km"] = np.nan
    out.loc[rows[1::2], "pickup_zone"] = None
    newest = out["pickup_at"] >= out["pickup_at"].quantile(0.8)
    out.loc[newest & (out.index % 7 == 0), "pickup_zone"] = "unseen"
    return out


@pytest.mark.parametrize(
    "chosen",
    [regression(num_boost_round=60), binary(num_boost_round=60, class_weight="balanced")],
    ids=["regression", "binary"],
)
def test_the_booster_is_the_one_lightgbm_trains_on_the_transformed_frames(chosen: TrainSpec) -> None:
    # train_model hands LightGBM float64 matrices it builds itself, not transform's frames: the same model.
    splits = time_split(messy(late_trips()), "pickup_at", 0.15, 0.15)

    model = train_model(splits, chosen)

    reference = booster_on_frames(splits, chosen, model.preprocessor)
    assert trees(model.booster) == trees(reference)
    for part in (splits.train, splits.holdout):
        np.testing.assert_array_equal(
            predict_raw(model.booster, model.preprocessor, part), reference.predict(model.preprocessor.transform(part))
        )


def test_a_warm_start_boosts_on_as_lightgbm_does_on_the_transformed_frames(trips: pd.DataFrame) -> None:
    splits = time_split(messy(trips), "pickup_at", 0.15, 0.15)
    champion = train_model(splits, spec(num_boost_round=15, early_stopping_rounds=None))
    # A champion's preprocessor comes from the serving module logged with it, maybe from before
    # Preprocessor.matrix: training relies on its to_dict alone.
    logged_before = SimpleNamespace(to_dict=champion.preprocessor.to_dict)

    warm = train_model(splits, spec(), init_model=champion.booster, preprocessor=logged_before)  # type: ignore[arg-type]

    reference = booster_on_frames(splits, spec(), champion.preprocessor, init_model=champion.booster)
    assert trees(warm.booster) == trees(reference)
    assert warm.booster.current_iteration() > 15  # the champion's trees and new ones
    np.testing.assert_array_equal(
        predict_raw(warm.booster, warm.preprocessor, splits.holdout),
        reference.predict(champion.preprocessor.transform(splits.holdout)),
    )


def test_the_training_matrix_is_freed_before_the_validation_matrix_is_built(
    trips: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The training rows are binned first, so that their float64 matrix and the validation's are never held together.
    built: list[weakref.ref[np.ndarray]] = []
    alive_at_each_build: list[int] = []
    matrix = Preprocessor.matrix

    def recording(self: Preprocessor, frame: pd.DataFrame) -> np.ndarray:
        alive_at_each_build.append(sum(ref() is not None for ref in built))
        out = matrix(self, frame)
        built.append(weakref.ref(out))
        return out

    monkeypatch.setattr(Preprocessor, "matrix", recording)

    train_model(time_split(trips, "pickup_at", 0.15, 0.15), spec())

    assert alive_at_each_build[:2] == [0, 0]  # the training matrix, then the validation's, with the first gone


def test_training_holds_no_frame_of_the_features_and_no_copy_of_it() -> None:
    # Numpy's allocations (tracemalloc traces them; LightGBM's own are not) while training: the training rows'
    # float64 matrix and the temporaries of one column at a time. Training on transform's frames took 2.2 times
    # the matrix: the frames, then LightGBM's float64 copy of them.
    splits = time_split(synthetic(200_000, seed=0), "t", 0.15, 0.15)
    small = TrainSpec(
        features=["a", "hour", "g", "flag"],
        categorical=["g"],
        target="y",
        num_boost_round=5,
        early_stopping_rounds=None,
        num_threads=1,
    )
    train_model(splits, small)  # LightGBM's first-call set-up is not what is measured
    matrix_bytes = len(splits.train) * len(small.features) * 8

    tracemalloc.start()
    try:
        train_model(splits, small)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert peak < 1.6 * matrix_bytes, f"{peak / matrix_bytes:.2f} times the training matrix"
