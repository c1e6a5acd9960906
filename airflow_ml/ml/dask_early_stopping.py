"""Early stopping for ``lightgbm.dask``: every worker judges the same, whole validation rows, so all stop together.

``lightgbm.dask`` 4.7 hands each worker only the validation parts it holds: each would judge its own rows and stop
at its own round while the others wait on the network (LightGBM issues 3712, 4493, 6351). Here each worker gets a
copy of every validation row (transformed, with its label), added to its booster before the first round and binned
by the training rows' bins. Data-parallel training syncs the histograms and splits, so every worker holds the same
trees; with the same rows and as many threads each, every worker computes the same metric after each round, and
LightGBM's own ``early_stopping`` callback (the local path's) stops them all at the same round.

The copies cost each worker the validation rows: they are made only up to ``training.dask.early_stopping_rows``
rows and when every worker has as many threads (LightGBM's metric sums in per-thread parts, whose rounding
follows the thread count); otherwise every round is trained and the booster cut afterwards
(:mod:`airflow_ml.ml.dask_curve`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

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


def stops_on_workers(threads: Mapping[str, int], validation_rows: int, max_rows: int) -> str | None:
    """Why the workers (``threads``: each one's thread count, as ``Client.nthreads()`` gives them) cannot stop
    early on copies of ``validation_rows`` validation rows, or None when they can."""
    if validation_rows > max_rows:
        return (
            f"{validation_rows} validation rows exceed training.dask.early_stopping_rows ({max_rows}), the copy "
            "each worker would hold"
        )
    counts = sorted(set(threads.values()))
    if len(counts) > 1:
        return f"the workers have different thread counts {counts}: their metrics could round apart"
    return None


def early_stopping_callbacks(client: Client, features: dd.DataFrame, labels: dd.Series, rounds: int) -> list[Any]:
    """The callbacks for ``lightgbm.dask``'s ``fit``: the validation rows, copied to every worker, and LightGBM's
    ``early_stopping`` after ``rounds`` rounds without a better score.

    The rows are concatenated on one worker and replicated from there: they never pass through this process.
    """
    import dask
    import lightgbm as lgb

    carrier = client.compute(dask.delayed(_carrier)(features.to_delayed(), labels.to_delayed()))
    client.replicate([carrier])
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
