"""Early stopping for ``lightgbm.dask``: every worker judges the same, whole validation rows, so all stop together.

``lightgbm.dask`` 4.7 hands each worker only the validation parts it holds: each would judge its own rows and stop
at its own round while the others wait on the network (LightGBM issues 3712, 4493, 6351). Here each worker gets a
copy of every validation row (transformed, with its label), added to its booster before the first round and binned
by the training rows' bins. Data-parallel training syncs the histograms and splits, so every worker holds the same
trees and so the same score for each row (each row's score is one thread's sum of its leaves). The metric must then
come out the same to the last bit on every worker, or one could see a better round that the others do not and keep
training alone. LightGBM's own metrics are alike when each worker has one thread (the sum runs in one order) and for
AUC (a count over the sorted scores); a worker of several threads sums per-thread parts in the order its threads
finish, so there a metric that is a mean over rows is computed by numpy in one fixed order instead
(:func:`worker_metric`; it costs LightGBM's predictions handed to Python every round: about 8 s of a 32 s train
step at 5M rows, benchmarks/README.md). LightGBM's own ``early_stopping`` callback (the local path's rule) then
stops every worker at the same round.

The copies cost each worker the validation rows: they are made only up to ``training.dask.early_stopping_rows``
rows; above, every round is trained and the booster cut afterwards (:mod:`airflow_ml.ml.dask_curve`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any

from airflow_ml.ml.dask_curve import PREDICTION_LOSS

if TYPE_CHECKING:
    import dask.dataframe as dd
    import numpy as np
    import pandas as pd
    from distributed import Client

#: The name the copied validation rows have in the booster's evaluation results.
VALIDATION_NAME = "validation"


class ValidationOnEveryWorker:
    """A LightGBM callback that adds the validation rows it carries to the worker's booster before the first
    round, binned as the worker's training rows (``Dataset.create_valid``, as LightGBM's own ``eval_set``)."""

    order = 0
    before_iteration = True

    def __init__(self, features: pd.DataFrame, labels: np.ndarray) -> None:
        self.features, self.labels = features, labels

    def __call__(self, env: Any) -> None:
        """Add the rows once, before the first round: LightGBM then scores each new tree on them."""
        if env.iteration == env.begin_iteration:
            booster = env.model
            booster.add_valid(booster.train_set.create_valid(self.features, label=self.labels), VALIDATION_NAME)


def stops_on_workers(validation_rows: int, max_rows: int) -> str | None:
    """Why the workers cannot stop early on copies of ``validation_rows`` validation rows, or None when they can."""
    if validation_rows > max_rows:
        return (
            f"{validation_rows} validation rows exceed training.dask.early_stopping_rows ({max_rows}), the copy "
            "each worker would hold"
        )
    return None


def worker_metric(
    metric: str, threads: Collection[int]
) -> Callable[[np.ndarray | None, np.ndarray], tuple[str, float, bool]] | None:
    """LightGBM's ``metric`` (its name, as ``lightgbm_metric`` gives it) as a scikit-learn style ``eval_metric``
    that every worker computes bit for bit alike, or None when LightGBM's own already is: ``auc``, or workers
    (``threads``: each one's thread count) of one thread each.

    The predictions it gets are LightGBM's: probabilities for the binary objective, values for regression.
    """
    if metric == "auc" or max(threads, default=1) <= 1:
        return None
    if metric not in PREDICTION_LOSS:
        raise ValueError(f"no early-stopping metric {metric!r} on Dask; one of {sorted([*PREDICTION_LOSS, 'auc'])}")
    loss = PREDICTION_LOSS[metric]

    def evaluate(labels: np.ndarray | None, predictions: np.ndarray) -> tuple[str, float, bool]:
        import numpy as np

        if labels is None:
            raise ValueError("the validation rows have no labels: the early-stopping metric needs them")
        y = np.asarray(labels, dtype="float64")
        # numpy's sum of a float64 array adds in a fixed (pairwise) order, whatever the threads.
        mean = float(np.sum(loss(y, np.asarray(predictions, dtype="float64")))) / max(len(y), 1)
        return metric, mean**0.5 if metric == "rmse" else mean, False

    return evaluate


def early_stopping_callbacks(client: Client, features: dd.DataFrame, labels: dd.Series, rounds: int) -> list[Any]:
    """The callbacks for ``lightgbm.dask``'s ``fit``: the validation rows, which each worker fetches for itself,
    and LightGBM's ``early_stopping`` after ``rounds`` rounds without a better score (of the first metric, the one
    :func:`worker_metric` computes when it is not AUC).

    The rows are concatenated on one worker (a future: each training task depends on it, so each worker fetches
    it from there); they never pass through this process.
    """
    import dask
    import lightgbm as lgb

    carrier = client.compute(dask.delayed(_carrier)(features.to_delayed(), labels.to_delayed()))
    return [carrier, lgb.early_stopping(rounds, first_metric_only=True, verbose=False)]


def _carrier(features: list[pd.DataFrame], labels: list[pd.Series]) -> ValidationOnEveryWorker:
    import numpy as np
    import pandas as pd

    rows = pd.concat(features, ignore_index=True) if features else pd.DataFrame()
    return ValidationOnEveryWorker(rows, np.concatenate([np.asarray(y, dtype="float64") for y in labels]))


def evaluated_curve(estimator: Any) -> list[float]:
    """The metric of the copied validation rows after each round trained, from the fitted ``estimator``."""
    found = getattr(estimator, "evals_result_", None) or {}
    return [float(v) for v in next(iter(found.get(VALIDATION_NAME, {}).values()), [])]
