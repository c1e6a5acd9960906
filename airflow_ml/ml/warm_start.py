"""Guarded warm start: also boost on from the champion's booster, and keep whichever wins on validation.

The champion's trees are only reused when it is this city's (its lineage tags) and its inputs mean the
same as today's: the same features in
the same order, the same categorical features with the same categories, and the same task. Otherwise
the warm candidate is skipped, and the reason is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlflow import MlflowClient

from airflow_ml.exceptions import ForeignChampion
from airflow_ml.ml import model_registry as registry
from airflow_ml.ml.lineage import this_citys_champion
from airflow_ml.ml.metrics import DIRECTIONS
from airflow_ml.ml.serving import Preprocessor
from airflow_ml.ml.train import Splits, TrainedModel, TrainSpec, train_model

#: Run tag saying which candidate was kept: ``cold``, ``warm`` or ``skipped: <reason>``.
WARM_START_TAG = "airflow_ml.warm_start"


@dataclass(frozen=True)
class WarmStartOutcome:
    """The model to keep and why: ``choice`` is ``cold``, ``warm`` or ``skipped: <reason>``."""

    model: TrainedModel
    choice: str
    scores: dict[str, float]


def incompatibility(champion: Preprocessor, fresh: Preprocessor) -> str | None:
    """Why the champion's booster cannot take today's inputs, or None when it can."""
    if champion.task != fresh.task:
        return f"the champion is a {champion.task} model, this one is {fresh.task}"
    if champion.features != fresh.features:
        return f"features changed from {champion.features} to {fresh.features}"
    if sorted(champion.categories) != sorted(fresh.categories):
        return f"categorical features changed from {sorted(champion.categories)} to {sorted(fresh.categories)}"
    for name, values in fresh.categories.items():
        if champion.categories[name] != values:
            added = sorted(set(values) - set(champion.categories[name]))
            removed = sorted(set(champion.categories[name]) - set(values))
            return f"categories of {name!r} changed (added {added[:5]}, removed {removed[:5]})"
    return None


def warm_start(
    client: MlflowClient, model_name: str, splits: Splits, spec: TrainSpec, cold: TrainedModel
) -> WarmStartOutcome:
    """Train a candidate from the champion of ``model_name`` and keep it if it beats ``cold`` on validation.

    Ties keep the cold model (fewer trees, no inherited history).
    """
    try:
        champion = this_citys_champion(client, model_name)
    except ForeignChampion as exc:  # never boost on from another city's trees
        return WarmStartOutcome(cold, f"skipped: champion v{exc.version} is not this city's ({exc.lineage})", {})
    if champion is None:
        return WarmStartOutcome(cold, "skipped: no champion yet", {})
    try:
        served = registry.load_version(client, champion).unwrap_python_model()
        booster, preprocessor = served.booster, served.preprocessor
    except Exception as exc:  # noqa: BLE001 - an unreadable champion must not fail the training
        return WarmStartOutcome(cold, f"skipped: champion v{champion.version} could not be loaded ({exc})", {})
    reason = incompatibility(preprocessor, cold.preprocessor)
    if reason is not None:
        return WarmStartOutcome(cold, f"skipped: champion v{champion.version}: {reason}", {})
    warm = train_model(splits, spec, init_model=booster, preprocessor=preprocessor)
    key = f"validation_{spec.metric}"
    scores = {"cold": cold.metrics[key], "warm": warm.metrics[key]}
    better = (
        scores["warm"] < scores["cold"] if DIRECTIONS[spec.metric] == "minimize" else scores["warm"] > scores["cold"]
    )
    return WarmStartOutcome(warm if better else cold, "warm" if better else "cold", scores)
