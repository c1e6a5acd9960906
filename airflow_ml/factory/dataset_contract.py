"""Build a DAG's dataset contract from its validated configuration (the snapshot task checks the data with it)."""

from __future__ import annotations

from airflow_ml.data.contract import ColumnKind, ColumnRule, DataContract, RowFilter
from airflow_ml.templates.models import ModelConfig


def data_contract(config: ModelConfig) -> DataContract:
    """The columns ``config`` names, each with what it must hold and where it is named, and its row filters.

    Features are numeric or categorical, the target is a regression's or a binary task's, the time column
    holds date-times; extra columns and gate slices must exist (a slice with bins must hold numbers).
    """
    dataset = config.dataset
    categorical = set(dataset.categorical_features)
    target: ColumnKind = "binary_target" if config.task == "binary" else "regression_target"
    rules = [
        ColumnRule(name, "categorical" if name in categorical else "numeric", f"dataset.features[{index}]")
        for index, name in enumerate(dataset.features)
    ]
    rules.append(ColumnRule(dataset.target, target, "dataset.target"))
    rules.append(ColumnRule(dataset.time_column, "time", "dataset.time_column"))
    rules += [
        ColumnRule(name, "present", f"dataset.extra_columns[{index}]")
        for index, name in enumerate(dataset.extra_columns)
    ]
    rules += [
        ColumnRule(spec.column, "binned" if spec.bins else "present", f"gate.slices[{index}].column")
        for index, spec in enumerate(config.gate.slices)
    ]
    filters = [
        RowFilter(
            spec.column,
            spec.op,
            tuple(spec.value) if isinstance(spec.value, list) else spec.value,
            f"dataset.filters[{index}]",
        )
        for index, spec in enumerate(dataset.filters)
    ]
    return DataContract(rules=tuple(rules), filters=tuple(filters), time_column=dataset.time_column)
