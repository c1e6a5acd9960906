"""Unit tests of the preprocessing that travels with the model (airflow_ml.ml.serving)."""

from __future__ import annotations

import json
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from airflow_ml.ml.serving import Preprocessor, predict_raw

FEATURES = ["distance_km", "zone", "hour"]
CATEGORICAL = ["zone"]


@pytest.fixture
def train() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "hour": [8, 9, 17, 18, 23],
            "zone": ["mitte", "kreuzberg", None, "mitte", "wedding"],
            "distance_km": [1.5, 2.0, 3.25, 0.5, 10.0],
            "duration_min": [5.0, 7.0, 11.0, 3.0, 25.0],
        }
    )


@pytest.fixture
def fitted(train: pd.DataFrame) -> Preprocessor:
    return Preprocessor.fit(train, FEATURES, CATEGORICAL)


def test_categories_come_from_training_rows_only(fitted: Preprocessor, train: pd.DataFrame) -> None:
    seen = set(train["zone"].dropna())
    later = pd.DataFrame({"hour": [1, 2, 3], "zone": ["neukoelln", "mitte", None], "distance_km": [1.0, 2.0, 3.0]})

    out = fitted.transform(later)

    assert set(fitted.categories["zone"]) == seen
    assert list(out["zone"].cat.categories) == fitted.categories["zone"]
    assert pd.isna(out["zone"].iloc[0])  # seen only later -> missing
    assert out["zone"].iloc[1] == "mitte"
    assert pd.isna(out["zone"].iloc[2])
    # transforming later rows never teaches the preprocessor new categories
    assert "neukoelln" not in fitted.categories["zone"]
    assert set(fitted.categories["zone"]) == seen


def test_transform_orders_columns_and_types_them(fitted: Preprocessor, train: pd.DataFrame) -> None:
    shuffled = train[["duration_min", "zone", "hour", "distance_km"]].copy()
    shuffled.index = [10, 11, 12, 13, 14]

    out = fitted.transform(shuffled)

    assert list(out.columns) == FEATURES
    assert isinstance(out["zone"].dtype, pd.CategoricalDtype)
    assert out["distance_km"].dtype == np.float64
    assert out["hour"].dtype == np.float64
    assert list(out.index) == list(shuffled.index)
    np.testing.assert_array_equal(out["hour"].to_numpy(), shuffled["hour"].to_numpy(dtype="float64"))
    assert "duration_min" not in out.columns


def test_missing_feature_column_is_named(fitted: Preprocessor, train: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="distance_km"):
        fitted.transform(train.drop(columns=["distance_km"]))


def test_fit_also_requires_the_features(train: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="'hour'"):
        Preprocessor.fit(train.drop(columns=["hour"]), FEATURES, CATEGORICAL)


def test_numeric_strings_are_coerced(fitted: Preprocessor) -> None:
    raw = pd.DataFrame({"distance_km": ["1.5", "2", "not a number", None], "zone": ["mitte"] * 4, "hour": [1] * 4})

    out = fitted.transform(raw)

    assert out["distance_km"].dtype == np.float64
    assert out["distance_km"].iloc[0] == 1.5
    assert out["distance_km"].iloc[1] == 2.0
    assert np.isnan(out["distance_km"].iloc[2])
    assert np.isnan(out["distance_km"].iloc[3])


def test_object_and_string_dtype_give_the_same_output(train: pd.DataFrame) -> None:
    as_object = train.astype({"zone": object})
    as_string = train.astype({"zone": "string"})

    fitted_object = Preprocessor.fit(as_object, FEATURES, CATEGORICAL)
    fitted_string = Preprocessor.fit(as_string, FEATURES, CATEGORICAL)

    assert fitted_object.categories == fitted_string.categories
    pd.testing.assert_frame_equal(fitted_object.transform(as_object), fitted_object.transform(as_string))
    pd.testing.assert_frame_equal(fitted_object.transform(as_string), fitted_string.transform(as_object))


def test_integer_categories_survive_a_null_in_the_serving_batch() -> None:
    train = pd.DataFrame({"station": [1, 2, 3, 1], "x": [0.0, 1.0, 2.0, 3.0]})
    fitted = Preprocessor.fit(train, ["station", "x"], ["station"])
    batch = pd.DataFrame({"station": [1, 2, None], "x": [0.0, 1.0, 2.0]})

    out = fitted.transform(batch)

    assert out["station"].notna().tolist() == [True, True, False]


def test_to_dict_from_dict_round_trip(fitted: Preprocessor, train: pd.DataFrame) -> None:
    data = json.loads(json.dumps(fitted.to_dict()))
    copy = Preprocessor.from_dict(data)

    assert copy.features == fitted.features
    assert copy.categories == fitted.categories
    assert copy.task == fitted.task
    pd.testing.assert_frame_equal(copy.transform(train), fitted.transform(train))


def test_save_load_round_trip(fitted: Preprocessor, train: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "preprocessor.json"
    fitted.save(path)

    loaded = Preprocessor.load(str(path))

    assert loaded.to_dict() == fitted.to_dict()
    pd.testing.assert_frame_equal(loaded.transform(train), fitted.transform(train))


def test_preprocessor_does_not_alias_its_inputs() -> None:
    features = ["a", "b"]
    categories = {"b": ["x"]}
    pre = Preprocessor(features, categories, "binary")

    features.append("c")
    categories["b"].append("y")

    assert pre.features == ["a", "b"]
    assert pre.categories == {"b": ["x"]}
    assert Preprocessor.from_dict(pre.to_dict()).task == "binary"


def test_predict_raw_applies_the_transform() -> None:
    rng = np.random.default_rng(0)
    n = 600
    frame = pd.DataFrame(
        {
            "zone": rng.choice(["a", "b", "c"], size=n),
            "distance_km": rng.uniform(0.5, 10, size=n),
            "hour": rng.integers(0, 24, size=n),
        }
    )
    y = frame["distance_km"] * 3 + frame["zone"].map({"a": 0.0, "b": 5.0, "c": 10.0})
    pre = Preprocessor.fit(frame, FEATURES, CATEGORICAL)
    params = {"objective": "regression", "verbosity": -1, "seed": 1, "deterministic": True, "num_threads": 1}
    booster = lgb.train(params, lgb.Dataset(pre.transform(frame), label=y), num_boost_round=30)

    # raw rows with shuffled columns, object dtype and numeric strings predict like the clean frame
    messy = frame[["hour", "distance_km", "zone"]].astype({"distance_km": str, "zone": object})
    clean = predict_raw(booster, pre, frame)
    assert clean.dtype == np.float64
    assert clean.shape == (n,)
    np.testing.assert_allclose(predict_raw(booster, pre, messy), clean)
    np.testing.assert_array_equal(clean, booster.predict(pre.transform(frame)))
    assert np.corrcoef(clean, y)[0, 1] > 0.9


def test_matrix_holds_what_lightgbm_reads_from_the_transformed_frame() -> None:
    # LightGBM turns transform's frame into one float64 array: category codes with -1 as NaN, numbers as they are.
    # The matrix is that array, built directly, bit for bit; a booster predicts the same from either.
    rng = np.random.default_rng(4)
    n = 400
    frame = pd.DataFrame(
        {
            "zone": pd.Series(rng.choice(["a", "b", "c", None], n), dtype="str"),
            "distance_km": np.where(rng.random(n) < 0.1, np.nan, rng.uniform(0.5, 10, n)),
            "hour": rng.integers(0, 24, n),
            "raining": rng.random(n) < 0.3,
            "riders": pd.array(np.where(rng.random(n) < 0.1, None, rng.integers(1, 5, n)), dtype="Int64"),
            "fare": rng.uniform(2, 40, n).round(2).astype(str),
            "wind": rng.normal(size=n).astype("float32"),
        }
    )
    frame.loc[frame.index[-20:], "zone"] = "unseen"
    features = ["wind", "zone", "fare", "distance_km", "riders", "hour", "raining"]
    pre = Preprocessor.fit(frame.iloc[: n // 2], features, ["zone"])

    matrix = pre.matrix(frame)

    assert matrix.shape == (n, len(features))
    assert matrix.dtype == np.float64
    assert matrix.flags.f_contiguous  # LightGBM reads a column-major array without copying it
    transformed = pre.transform(frame)
    for j, name in enumerate(features):
        column = transformed[name]
        if name in pre.categories:
            expected = column.cat.codes.to_numpy().astype("float64")
            expected[column.isna().to_numpy()] = np.nan
        else:
            expected = column.to_numpy()
        assert matrix[:, j].tobytes() == expected.tobytes(), name
    label = frame["hour"] * 2.0 + frame["zone"].eq("b")
    params = {"objective": "regression", "verbosity": -1, "seed": 1, "deterministic": True, "num_threads": 1}
    booster = lgb.train(params, lgb.Dataset(transformed, label=label, categorical_feature=["zone"]), 20)
    np.testing.assert_array_equal(booster.predict(matrix), booster.predict(transformed))
    np.testing.assert_array_equal(predict_raw(booster, pre, frame), booster.predict(transformed))


def test_no_rows_predict_nothing(fitted: Preprocessor, train: pd.DataFrame) -> None:
    params = {"objective": "regression", "verbosity": -1, "min_data_in_leaf": 1, "min_data_in_bin": 1}
    booster = lgb.train(params, lgb.Dataset(fitted.matrix(train), label=train["duration_min"]), 2)

    predictions = predict_raw(booster, fitted, train.iloc[:0])

    assert predictions.dtype == np.float64
    assert predictions.shape == (0,)


def test_matrix_names_a_missing_feature(fitted: Preprocessor, train: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="distance_km"):
        fitted.matrix(train.drop(columns=["distance_km"]))


@pytest.mark.parametrize(
    "values",
    [
        pd.Series(["b", None, "a", "zz", "b", "c"], dtype="str"),
        pd.Series(["b", None, "a", "zz", "b", "c"], dtype=object),
        pd.Series(["b", None, "a", "zz"], dtype="string"),
        pd.Series([2.0, None, 1.0, 7.0, 2.0]),  # whole floats read as integers, as an int column with a null
        pd.Series([2.5, None, 1.0]),  # not whole: read as floats
        pd.Series([3, 1, 2, 3], dtype="int64"),
        pd.Series([None, None], dtype=object),
    ],
)
def test_level_codes_are_the_categorical_of_each_rows_text(values: pd.Series) -> None:
    from airflow_ml.ml.serving import level_codes, level_text

    categories = ["1", "2", "2.5", "3", "a", "b", "c"]

    found = level_codes(values, categories)

    expected = pd.Categorical(level_text(values), categories=categories)
    pd.testing.assert_extension_array_equal(found, expected)
    fitted = Preprocessor.fit(pd.DataFrame({"v": values}), ["v"], ["v"])
    assert fitted.categories["v"] == sorted(str(v) for v in level_text(values).dropna().unique())


@pytest.mark.parametrize("count", [127, 128, 129, 300, 40_000])
def test_level_codes_of_many_categories_reach_the_last(count: int) -> None:
    # The codes are taken into the smallest integer type that holds the categories' positions.
    from airflow_ml.ml.serving import level_codes

    categories = [f"z{i:05d}" for i in range(count)]
    values = pd.Series([categories[-1], None, categories[0], "unseen", categories[count // 2]], dtype="str")

    found = level_codes(values, categories)

    pd.testing.assert_extension_array_equal(found, pd.Categorical(values, categories=categories))
    assert found.codes.tolist() == [count - 1, -1, 0, -1, count // 2]


@pytest.mark.parametrize(
    "values",
    [
        pd.Series([0.0, -0.0, 1.5, -0.0]),  # equal floats with two texts
        pd.Series([1, 1.0, True, "1"], dtype=object),  # one value for hashing, three texts
        pd.Series([True, 1, 1.0, None], dtype=object),
        pd.Series([0.0, -0.0, False, 0], dtype=object),
        pd.Series([1.0, True], dtype="category"),
        pd.Series([True, False, True]),
        pd.Series([-0.0, 0.0, 2.0, None]),  # whole floats read as integers: -0.0 and 0.0 are both "0"
    ],
)
def test_values_equal_but_read_differently_keep_their_own_levels(values: pd.Series) -> None:
    # The fit and the codes are exactly the old per-row ones: every row turned to text, then categorised.
    from airflow_ml.ml.serving import level_codes, level_text

    old_categories = sorted(str(v) for v in level_text(values).dropna().unique())
    old_codes = pd.Categorical(level_text(values), categories=old_categories)

    fitted = Preprocessor.fit(pd.DataFrame({"v": values}), ["v"], ["v"])

    assert fitted.categories["v"] == old_categories
    pd.testing.assert_extension_array_equal(level_codes(values, old_categories), old_codes)
    served = fitted.transform(pd.DataFrame({"v": values[::-1]}))["v"]
    expected = pd.Categorical(level_text(values[::-1]), categories=old_categories)
    pd.testing.assert_extension_array_equal(served.array, expected)
