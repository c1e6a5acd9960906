"""Build a DAG's dataset contract from its validated configuration (the snapshot task checks the data with it)."""

from __future__ import annotations

from collections.abc import Mapping

from airflow_ml.data.contract import ColumnKind, ColumnRule, DataContract, RowFilter
from airflow_ml.templates.describe import Origin
from airflow_ml.templates.models import ModelConfig
from airflow_ml.templates.yaml_lines import Path_


def data_contract(config: ModelConfig, origin: Origin | None = None) -> DataContract:
    """The columns ``config`` names, each with what it must hold and where it is named, and its row filters.

    Features are numeric or categorical, the target is a regression's or a binary task's, the time column
    holds date-times; extra columns and gate slices must exist (a slice with bins must hold numbers).

    Args:
        config: The validated configuration.
        origin: Where each setting was set (the loader's ``origins``); each rule's field then names its file
            and line, e.g. ``dataset.features[3] (ride_duration.yaml line 12)``.
    """
    where = _Where(origin or {})
    dataset = config.dataset
    categorical = set(dataset.categorical_features)
    target: ColumnKind = "binary_target" if config.task == "binary" else "regression_target"
    rules = [
        ColumnRule(name, "categorical" if name in categorical else "numeric", where("dataset", "features", index))
        for index, name in enumerate(dataset.features)
    ]
    rules.append(ColumnRule(dataset.target, target, where("dataset", "target")))
    rules.append(ColumnRule(dataset.time_column, "time", where("dataset", "time_column")))
    rules += [
        ColumnRule(name, "present", where("dataset", "extra_columns", index))
        for index, name in enumerate(dataset.extra_columns)
    ]
    rules += [
        ColumnRule(spec.column, "binned" if spec.bins else "present", where("gate", "slices", index, "column"))
        for index, spec in enumerate(config.gate.slices)
    ]
    filters = [
        RowFilter(
            spec.column,
            spec.op,
            tuple(spec.value) if isinstance(spec.value, list) else spec.value,
            where("dataset", "filters", index),
        )
        for index, spec in enumerate(dataset.filters)
    ]
    return DataContract(rules=tuple(rules), filters=tuple(filters), time_column=dataset.time_column)


class _Where:
    """A setting's dotted name, with the file and line that set it when the loader recorded them."""

    def __init__(self, origin: Mapping[Path_, tuple[object, int, int]]) -> None:
        self.origin = origin

    def __call__(self, *path: str | int) -> str:
        name = ".".join(f"{p}" if isinstance(p, str) else f"[{p}]" for p in path).replace(".[", "[")
        for end in range(len(path), 0, -1):  # a list set as a whole has the line of its key
            found = self.origin.get(path[:end])
            if found is not None:
                file, line = found[0], found[1]
                return f"{name} ({getattr(file, 'name', file)} line {line})"
        return name
