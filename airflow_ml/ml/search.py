"""Optional Optuna search of LightGBM parameters, scored on the validation split, each trial a nested MLflow run.

The sampler is seeded (``TPESampler(seed=...)``), so the same snapshot and config try the same
parameters in the same order; the search is bounded by a number of trials and a time limit. Trials
never score the holdout: it stays unseen until the final model and the promotion gate.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any, Literal

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag

from airflow_ml.ml.metrics import DIRECTIONS
from airflow_ml.ml.train import Splits, TrainSpec, train_model

#: Tag of a trial run naming its parent; MLflow's UI nests runs by it.
PARENT_RUN_TAG = "mlflow.parentRunId"
#: LightGBM parameters that take whole numbers: a search draws integers for them unless its settings name
#: their own (the factory derives them from the template's model, which tests/unit/ml/test_search.py compares).
LIGHTGBM_INTEGER_PARAMS = frozenset(
    {"num_leaves", "max_depth", "min_data_in_leaf", "bagging_freq", "max_bin"}
    | {"min_data_per_group", "max_cat_threshold"}
)


@dataclass(frozen=True)
class SearchRange:
    """One parameter's range: integers for integer parameters, a log scale when ``log``."""

    low: float
    high: float
    log: bool = False
    integer: bool = False


@dataclass(frozen=True)
class SearchSettings:
    """How long and over which ranges to search; ``trials`` 0 turns the search off."""

    trials: int
    timeout_seconds: float
    ranges: dict[str, SearchRange]

    @classmethod
    def from_config(
        cls, ranges: dict[str, list[Any]], *, trials: int, timeout_minutes: float, integers: set[str]
    ) -> SearchSettings:
        """Build settings from the template's ``training.search.params`` form (``[low, high]`` or ``[.., log]``)."""
        parsed = {
            name: SearchRange(float(bounds[0]), float(bounds[1]), log=len(bounds) > 2, integer=name in integers)
            for name, bounds in ranges.items()
        }
        return cls(trials=int(trials), timeout_seconds=float(timeout_minutes) * 60, ranges=parsed)


@dataclass(frozen=True)
class SearchResult:
    """The best parameters found, their validation score and how many trials ran."""

    best_params: dict[str, Any]
    best_value: float
    trials: int
    seconds: float


def search_params(
    client: MlflowClient,
    *,
    experiment_id: str,
    parent_run_id: str,
    splits: Splits,
    spec: TrainSpec,
    settings: SearchSettings,
) -> SearchResult:
    """Search ``settings.ranges`` with a seeded TPE sampler; log each trial as a run nested under the parent.

    Each trial trains with the spec's parameters overridden by the sampled ones and is scored by the
    spec's metric on the validation split. The best parameters are logged on the parent run as params with
    the prefix ``best_``, with ``search_trials`` (a count: a param); ``search_best_validation_<metric>`` and
    ``search_seconds`` are metrics. A trial's ``best_iteration`` is a tag of its run.

    Raises:
        ValueError: when the settings ask for no trials or no ranges.
    """
    import optuna  # heavy: imported only when a search runs

    if settings.trials < 1 or not settings.ranges:
        raise ValueError(f"a search needs at least one trial and one range, got {settings}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    metric = spec.metric
    direction: Literal["minimize", "maximize"] = "minimize" if DIRECTIONS[metric] == "minimize" else "maximize"

    def objective(trial: optuna.Trial) -> float:
        sampled = {name: _suggest(trial, name, bounds) for name, bounds in settings.ranges.items()}
        trial_spec = dataclasses.replace(spec, params={**spec.params, **sampled})
        run_id = client.create_run(
            experiment_id,
            tags={
                PARENT_RUN_TAG: parent_run_id,
                "airflow_ml.step": "search",
                "mlflow.runName": f"trial {trial.number}",
            },
        ).info.run_id
        try:
            trained = train_model(splits, trial_spec, score_holdout=False)
            value = trained.metrics[f"validation_{metric}"]
            client.log_batch(
                run_id,
                metrics=[Metric(f"validation_{metric}", value, 0, 0)],
                params=[Param(k, str(v)) for k, v in sampled.items()],
                tags=[RunTag("best_iteration", str(trained.best_iteration))],
            )
        except BaseException:
            client.set_terminated(run_id, status="FAILED")
            raise
        client.set_terminated(run_id, status="FINISHED")
        return value

    study = optuna.create_study(direction=direction, sampler=optuna.samplers.TPESampler(seed=spec.seed))
    started = time.monotonic()
    study.optimize(objective, n_trials=settings.trials, timeout=settings.timeout_seconds)
    seconds = time.monotonic() - started
    completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    result = SearchResult(
        best_params=dict(study.best_params), best_value=float(study.best_value), trials=len(completed), seconds=seconds
    )
    client.log_batch(
        parent_run_id,
        metrics=[
            Metric(f"search_best_validation_{metric}", result.best_value, 0, 0),
            Metric("search_seconds", result.seconds, 0, 0),
        ],
        # A count is a param: MLflow would chart it as a metric of one point.
        params=[Param("search_trials", str(result.trials))]
        + [Param(f"best_{k}", str(v)) for k, v in result.best_params.items()],
    )
    return result


def _suggest(trial: Any, name: str, bounds: SearchRange) -> float | int:
    if bounds.integer:
        return int(trial.suggest_int(name, int(bounds.low), int(bounds.high), log=bounds.log))
    return float(trial.suggest_float(name, bounds.low, bounds.high, log=bounds.log))
