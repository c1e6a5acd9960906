"""Operators of the provider: thin adapters that resolve their inputs, call one step and push small XComs.

Each operator lives in ``<task>_operator.py``; the classes are importable from here too
(``from airflow_ml.operators import TrainModelOperator``), loaded on first use so that importing one operator
does not import them all.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Every operator class, by the module that defines it.
_OPERATORS = {
    "SnapshotOperator": "snapshot_operator",
    "ValidateDataOperator": "validate_operator",
    "DriftCheckOperator": "drift_operator",
    "DriftReviewOperator": "drift_review_operator",
    "TrainModelOperator": "train_operator",
    "RegisterModelOperator": "register_operator",
    "PromotionGateOperator": "gate_operator",
    "PromotionApprovalOperator": "approval_operator",
    "ChampionHealthCheckOperator": "health_operator",
    "RollbackChampionOperator": "rollback_operator",
    "MonitorOperator": "monitor_operator",
    "PruneSnapshotsOperator": "prune_operator",
    "ResolveModelOperator": "resolve_operator",
    "ScoreOperator": "score_operator",
    "MlflowBaseOperator": "base_operator",
    "SnapshotStepOperator": "base_operator",
}

__all__ = sorted(_OPERATORS)


def __getattr__(name: str) -> Any:
    """An operator class, imported from its module when first asked for."""
    if name not in _OPERATORS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_OPERATORS[name]}"), name)
