"""The validation curve of a model trained on Dask, and the round early stopping would have kept.

``lightgbm.dask`` 4.7 has no early stopping (each worker would judge only its own validation parts and stop at a
different round, leaving the others waiting: LightGBM issues 3712, 4493, 6351). When the validation rows are more
than each worker may hold a copy of (:mod:`airflow_ml.ml.dask_early_stopping`), :mod:`airflow_ml.ml.dask_train`
trains every round; this module then computes LightGBM's early-stopping metric on the validation rows after each
round, on the cluster (per partition: the sum of the per-row loss and the count; AUC, not a sum over rows, on a
seeded sample of at most :data:`AUC_SAMPLE_ROWS` rows, all when fewer), and finds the round LightGBM's
``early_stopping`` callback would pick. The trees up to that round are the ones early stopping would have kept.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from airflow_ml.ml.metrics import lightgbm_metric, score
from airflow_ml.ml.train_spec import TrainSpec

if TYPE_CHECKING:
    import dask.dataframe as dd
    import numpy as np
    from distributed import Client

    from airflow_ml.ml.serving import Preprocessor

#: Validation rows an AUC curve is computed on, at most (a seeded sample beyond).
AUC_SAMPLE_ROWS = 200_000
#: Trees whose leaves one LightGBM call finds for every row of a partition (a block of int32 leaf numbers a row).
TREES_PER_CALL = 50
#: LightGBM's early-stopping metrics that improve downwards (``auc`` improves upwards).
MINIMIZED = frozenset({"rmse", "l2", "l1", "mape", "binary_logloss"})


def early_stopping_point(curve: Sequence[float], rounds: int | None, *, minimize: bool) -> tuple[int, int]:
    """The round LightGBM's ``early_stopping`` callback keeps (1-based), and how many rounds it would have run.

    The first best round wins; training stops once ``rounds`` rounds pass without a strictly better score.
    Without ``rounds`` every round is kept.
    """
    if not curve:
        return 0, 0
    if not rounds:
        return len(curve), len(curve)
    best = 0
    for i, value in enumerate(curve):
        if (value < curve[best]) if minimize else (value > curve[best]):
            best = i
        elif i - best >= rounds:
            return best + 1, i + 1
    return best + 1, len(curve)


def validation_curve(
    client: Client, booster: Any, preprocessor: Preprocessor, validation: dd.DataFrame, spec: TrainSpec
) -> list[float]:
    """LightGBM's early-stopping metric on the validation rows after each round, computed on the cluster."""
    import dask
    import numpy as np

    metric = lightgbm_metric(spec.metric)
    model = booster.model_to_string()
    if metric == "auc":
        total = client.compute(validation.map_partitions(len)).result().sum()
        fraction = min(1.0, AUC_SAMPLE_ROWS / max(1, int(total)))
        rows = validation if fraction >= 1 else validation.sample(frac=fraction, random_state=spec.seed)
        sample = client.compute(rows).result()
        return _auc_curve(model, preprocessor.to_dict(), sample, spec.target)
    tasks = [
        dask.delayed(_loss_sums)(part, model, preprocessor.to_dict(), spec.target, metric)
        for part in validation.to_delayed()
    ]
    sums = np.sum(client.compute(tasks, sync=True), axis=0)
    means = sums[:, 0] / np.maximum(sums[:, 1], 1)
    return [float(v) for v in (np.sqrt(means) if metric == "rmse" else means)]


def _per_round_raw(model: str, preprocessor: dict[str, Any], part: Any) -> Any:
    """Yield the raw score of every row after each round.

    Each row's leaf in :data:`TREES_PER_CALL` trees at a time (``pred_leaf``: one LightGBM call, not one per tree,
    whose fixed cost was most of the curve's time), the leaves' values read from the model: memory stays one
    column and a block of leaf numbers. Linear trees, whose output is not their leaf's value, and models of more
    than one tree a round are predicted one round at a time.
    """
    import lightgbm as lgb
    import numpy as np

    from airflow_ml.ml.serving import Preprocessor

    booster = lgb.Booster(model_str=model)
    features = Preprocessor.from_dict(preprocessor).transform(part)
    raw = np.zeros(len(part), dtype="float64")
    rounds = booster.current_iteration()
    values = leaf_values(model) if booster.num_model_per_iteration() == 1 else None
    if values is None or len(values) != rounds:
        for tree in range(rounds):
            raw += booster.predict(features, raw_score=True, start_iteration=tree, num_iteration=1)
            yield raw
        return
    for start in range(0, rounds, TREES_PER_CALL):
        count = min(TREES_PER_CALL, rounds - start)
        leaves = np.asarray(booster.predict(features, pred_leaf=True, start_iteration=start, num_iteration=count))
        for offset in range(count):
            raw += values[start + offset][leaves[:, offset]]
            yield raw


def leaf_values(model: str) -> list[np.ndarray] | None:
    """Each tree's leaf values, in tree order, from LightGBM's model text; None when a tree is linear (its output
    is not its leaf's value)."""
    import numpy as np

    values = []
    for line in model.splitlines():
        if line.startswith("is_linear=") and line.strip() != "is_linear=0":
            return None
        if line.startswith("leaf_value="):
            values.append(np.array(line.partition("=")[2].split(), dtype="float64"))
    return values


def _loss_sums(part: Any, model: str, preprocessor: dict[str, Any], target: str, metric: str) -> np.ndarray:
    """Per round: the sum of LightGBM's per-row loss over this partition's rows, and the row count."""
    import numpy as np

    y = part[target].to_numpy(dtype="float64")
    loss = _ROW_LOSS[metric]
    sums = [(float(loss(y, raw).sum()), len(y)) for raw in _per_round_raw(model, preprocessor, part)]
    return np.asarray(sums, dtype="float64").reshape(-1, 2)


def _auc_curve(model: str, preprocessor: dict[str, Any], sample: Any, target: str) -> list[float]:
    y = sample[target].to_numpy(dtype="float64")
    # AUC ranks the rows: the raw score ranks them as the probability does.
    return [score("auc", y, raw) for raw in _per_round_raw(model, preprocessor, sample)]


def _sigmoid(raw: np.ndarray) -> np.ndarray:
    import numpy as np

    return 1.0 / (1.0 + np.exp(-raw))


def _logloss(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    import numpy as np

    q = np.clip(p, 1e-15, 1 - 1e-15)  # LightGBM's kEpsilon
    return -(y * np.log(q) + (1 - y) * np.log(1 - q))


def _squared_error(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    return (y - p) ** 2


def _abs_error(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    import numpy as np

    return np.abs(y - p)


def _relative_error(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    import numpy as np

    return np.abs(y - p) / np.maximum(1.0, np.abs(y))  # LightGBM's mape


#: LightGBM's per-row loss of each early-stopping metric that is a mean over rows, of the labels and LightGBM's
#: predictions (probabilities for the binary objective); the metric is its mean (rmse: the mean's root).
PREDICTION_LOSS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "rmse": _squared_error,
    "l2": _squared_error,
    "l1": _abs_error,
    "mape": _relative_error,
    "binary_logloss": _logloss,
}
#: The same of raw scores (the curve's rounds add leaf values): a binary model's probability is their sigmoid.
_ROW_LOSS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    **PREDICTION_LOSS,
    "binary_logloss": lambda y, raw: _logloss(y, _sigmoid(raw)),
}
