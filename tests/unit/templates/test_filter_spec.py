"""Row filters in YAML (``dataset.filters``): a closed list of ops over known columns, scalar values, bounds.

A filter is data, never an expression: what YAML may say is checked by the loader, with the line.
"""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pytest

from airflow_ml.data.contract import FilterOp as DataFilterOp
from airflow_ml.data.contract import RowFilter
from airflow_ml.exceptions import ConfigError
from airflow_ml.factory.dataset_contract import data_contract
from airflow_ml.templates import load_city_file
from airflow_ml.templates.filter_spec import FilterOp


def load(root: Path, filters: str) -> object:
    path = root / "cities" / "porto.yaml"
    path.write_text(f"city: porto\ntemplate: ride_duration\ndataset:\n  filters:\n{filters}", encoding="utf-8")
    return load_city_file(path, root / "templates")


def problems(root: Path, filters: str) -> str:
    with pytest.raises(ConfigError) as info:
        load(root, filters)
    return str(info.value)


def test_filters_load_with_their_types_and_reach_the_contract(root: Path) -> None:
    config = load(
        root,
        "    - {column: duration_min, op: not_null}\n"
        '    - {column: distance_km, op: ">", value: 0}\n'
        "    - {column: pickup_zone, op: not_in, value: [airport, '0']}\n"
        '    - {column: is_raining, op: "==", value: 1.0}\n',
    )

    assert config.dataset.target_nulls_filtered  # type: ignore[attr-defined]
    contract = data_contract(config)  # type: ignore[arg-type]
    assert contract.filters == (
        RowFilter("duration_min", "not_null", None, "dataset.filters[0]"),
        RowFilter("distance_km", ">", 0, "dataset.filters[1]"),
        RowFilter("pickup_zone", "not_in", ("airport", "0"), "dataset.filters[2]"),
        RowFilter("is_raining", "==", 1.0, "dataset.filters[3]"),
    )
    assert type(contract.filters[1].value) is int
    assert contract.filters[2].value[1] == "0"  # a quoted YAML string stays a string


def test_the_templates_and_the_data_layer_share_one_list_of_ops() -> None:
    assert get_args(FilterOp) == get_args(DataFilterOp)


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ("    - {column: duration_min, op: '=~', value: 'x.*'}\n", "dataset.filters.0.op: Input should be"),
        ("    - {column: duration_min, op: not_null, value: 1}\n", "op 'not_null' takes no value"),
        ("    - {column: distance_km, op: '>'}\n", "op '>' takes one value"),
        ("    - {column: distance_km, op: '>', value: '0'}\n", "op '>' compares numbers"),
        ("    - {column: distance_km, op: '<=', value: true}\n", "op '<=' compares numbers"),
        ("    - {column: distance_km, op: in, value: 3}\n", "op 'in' takes a list of values"),
        ("    - {column: distance_km, op: '==', value: [1, 2]}\n", "op '==' takes one value"),
        (
            "    - {column: distance_km, op: '==', value: {python: os.system}}\n",
            "dataset.filters.0.value: a filter's value is a number",
        ),
        ("    - {column: distance_km, op: '>', value: 1.0e+300}\n", "(finite, within ±1e15)"),
        ("    - {column: distance_km, op: '>', value: .nan}\n", "(got nan)"),
        ("    - {column: distance_km, op: not_null, where: 'x > 1'}\n", "unknown key 'where'"),
        ("    - {column: distanse_km, op: not_null}\n", "did you mean 'distance_km'?"),
        (
            "    - {column: pickup_zone, op: in, value: [" + ", ".join(["a"] * 101) + "]}\n",
            "a list of 1 to 100 of them",
        ),
        ("    - {column: distance_km, op: not_null}\n" * 21, "at most 20 items"),
    ],
)
def test_a_bad_filter_names_its_line_and_the_fix(root: Path, filters: str, expected: str) -> None:
    text = problems(root, filters)

    assert expected in text
    assert "porto.yaml line " in text


def test_without_filters_the_target_nulls_are_not_filtered(root: Path) -> None:
    assert not load(root, "    []\n").dataset.target_nulls_filtered  # type: ignore[attr-defined]
    only_nulls = load(root, "    - {column: duration_min, op: is_null}\n")
    assert not only_nulls.dataset.target_nulls_filtered  # type: ignore[attr-defined]
