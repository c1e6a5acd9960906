"""The dataset contract, checked at snapshot time on demo data that carries the faults (airflow_ml.data.conformance).

The contract is the one the factory builds from the repository's ride_duration template, so these tests
check what a real DAG's snapshot task checks. Every failure must leave no snapshot behind.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from airflow_ml.cli.demo_run import summarize
from airflow_ml.data import conformance
from airflow_ml.data.conformance import apply_filters, check_file_types, check_kinds, file_kinds, missing_days
from airflow_ml.data.contract import ColumnRule, DataContract, RowFilter
from airflow_ml.data.demo import write_demo_data
from airflow_ml.data.snapshot import Manifest, read_snapshot, take_snapshot
from airflow_ml.exceptions import DataContractError
from airflow_ml.factory.dataset_contract import data_contract
from airflow_ml.templates import load_city_configs
from tests.support import REPO

RUN_ID = "manual__2026-03-01T02:00:00+00:00"


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lake")
    write_demo_data(root, cities=["lisbon"], batch="initial", scale=0.05)
    return root


@pytest.fixture
def source(lake: Path, tmp_path: Path) -> Path:
    """A private copy of lisbon's 60 demo partitions, so a test may break them."""
    copy = tmp_path / "data" / "raw" / "trips" / "lisbon"
    shutil.copytree(lake / "raw" / "trips" / "lisbon", copy)
    return copy


@pytest.fixture(scope="module")
def contract() -> DataContract:
    """The contract of the repository's ride_duration.lisbon DAG, as the factory builds it."""
    configs, errors = load_city_configs(REPO / "dag_templates")
    assert errors == []
    return data_contract(next(c for c in configs if c.city == "lisbon"))


def snapshot(source: Path, contract: DataContract | None, **window: Any) -> Manifest:
    root = source.parents[2] / "snapshots"
    return take_snapshot(
        str(source), str(root), template="ride_duration", city="lisbon", run_id=RUN_ID, contract=contract, **window
    )


def files_of(source: Path) -> list[Path]:
    return sorted(source.glob("date=*/*.parquet"))


def rewrite(path: Path, change: Callable[[pd.DataFrame], pd.DataFrame]) -> None:
    frame = pd.read_parquet(path)
    changed = change(frame)
    path.unlink()
    changed.to_parquet(path, index=False)


def no_snapshot_left(source: Path) -> bool:
    root = source.parents[2] / "snapshots"
    return not root.exists() or not any(root.rglob("*.parquet"))


def test_the_factory_names_every_column_with_its_kind_and_field(contract: DataContract) -> None:
    rules = {(r.field, r.column, r.kind) for r in contract.rules}

    assert ("dataset.features[0]", "distance_km", "numeric") in rules
    assert ("dataset.features[3]", "pickup_zone", "categorical") in rules
    assert ("dataset.target", "duration_min", "regression_target") in rules
    assert ("dataset.time_column", "pickup_at", "time") in rules
    assert ("gate.slices[0].column", "pickup_zone", "present") in rules
    assert contract.time_column == "pickup_at"
    assert DataContract.from_dict(contract.to_dict()) == contract


def test_with_the_loaders_origins_each_field_names_its_file_and_line() -> None:
    from airflow_ml.factory.dataset_contract import data_contract
    from airflow_ml.templates import load_city_configs

    origins: dict[str, Any] = {}
    configs, _ = load_city_configs(REPO / "dag_templates", origins=origins)
    berlin = next(c for c in configs if c.city == "berlin")
    template = (REPO / "dag_templates" / "templates" / "ride_duration.yaml").read_text(encoding="utf-8")
    features_line = next(n for n, line in enumerate(template.splitlines(), 1) if line.startswith("  features:"))
    target_line = next(n for n, line in enumerate(template.splitlines(), 1) if line.startswith("  target:"))

    fields = {r.column: r.field for r in data_contract(berlin, origins[berlin.dag_id]).rules}

    assert fields["distance_km"] == f"dataset.features[0] (ride_duration.yaml line {features_line})"
    assert fields["duration_min"] == f"dataset.target (ride_duration.yaml line {target_line})"


def test_a_contract_with_filters_round_trips_through_its_dict() -> None:
    contract = DataContract(
        rules=(ColumnRule("label", "binary_target", "dataset.target"),),
        filters=(
            RowFilter("label", "not_null", None, "dataset.filters[0]"),
            RowFilter("zone", "in", ("a", "b"), "dataset.filters[1]"),
        ),
        time_column="at",
    )

    assert DataContract.from_dict(contract.to_dict()) == contract


def test_demo_data_meets_the_contract_and_leaves_nothing_to_report(source: Path, contract: DataContract) -> None:
    manifest = snapshot(source, contract, window_days=90)

    assert manifest.row_count == sum(len(pd.read_parquet(p)) for p in files_of(source))
    assert manifest.missing_days == []
    assert manifest.rows_outside_partition == {}
    assert manifest.filters == []
    assert manifest.warnings() == []


def test_a_feature_missing_from_the_data_names_the_field_suggests_the_column_and_leaves_no_snapshot(
    source: Path, contract: DataContract
) -> None:
    # The data engineers renamed the column: today this fails in train with ArrowInvalid: No match for FieldRef.
    for path in files_of(source):
        rewrite(path, lambda f: f.rename(columns={"temperature_c": "temperature"}))

    with pytest.raises(DataContractError) as info:
        snapshot(source, contract)

    message = str(info.value)
    assert "dataset.features[4]: column 'temperature_c' is not in the data; did you mean 'temperature'?" in message
    assert "the data's columns: [" in message
    assert no_snapshot_left(source)


def test_a_feature_missing_from_some_partition_files_names_those_files_and_leaves_no_snapshot(
    source: Path, contract: DataContract
) -> None:
    # The demo's broken batch: three days whose files call distance_km "distance". Concatenated, those rows used
    # to get nulls in distance_km, which only validation (and its ``mostly``) stood between and training.
    broken = write_demo_data(source.parents[2], cities=["lisbon"], batch="broken", scale=0.05)
    assert len(broken) == 3

    with pytest.raises(DataContractError) as info:
        snapshot(source, contract)

    message = str(info.value)
    assert "dataset.features[0]: column 'distance_km' is missing from 3 of the 63 partition files: " in message
    assert ", ".join(repr(str(path)) for path in sorted(broken)) in message
    assert "(which hold 'distance': renamed?)" in message
    assert "add the column to the file(s) named (or rename it back), or delete them" in message
    assert no_snapshot_left(source)


def test_a_filter_column_missing_from_one_file_is_named_too(source: Path) -> None:
    contract = DataContract(filters=(RowFilter("duration_min", "not_null", None, "dataset.filters[0]"),))
    odd = files_of(source)[7]
    rewrite(odd, lambda f: f.drop(columns=["duration_min"]))

    with pytest.raises(DataContractError, match=r"dataset.filters\[0\]: column 'duration_min' is missing from 1 of"):
        snapshot(source, contract)
    assert no_snapshot_left(source)


@pytest.mark.parametrize(
    ("column", "change", "expected"),
    [
        (
            "distance_km",
            lambda s: s.astype(str),
            "dataset.features[0]: column 'distance_km' must hold numbers or true/false (a numeric feature), but "
            "holds text",
        ),
        (
            "pickup_zone",
            lambda s: pd.Series(np.arange(len(s)) / 2.0),
            "dataset.features[3]: column 'pickup_zone' must hold text, categories, integers or true/false (a "
            "categorical feature), but holds fractional numbers (e.g. 0.5)",
        ),
        (
            "duration_min",
            lambda s: s.astype(str) + " min",
            "dataset.target: column 'duration_min' must hold numbers (the target of a regression), but holds text",
        ),
        (
            "pickup_at",
            lambda s: s.dt.strftime("%Y-%m-%d %H:%M"),
            "dataset.time_column: column 'pickup_at' must hold date-times (the time column), but holds text",
        ),
    ],
)
def test_a_column_of_an_unusable_type_names_the_field_the_type_and_the_fix(
    source: Path, contract: DataContract, column: str, change: Callable[[pd.Series], pd.Series], expected: str
) -> None:
    for path in files_of(source):
        rewrite(path, lambda f: f.assign(**{column: change(f[column]).to_numpy()}))

    with pytest.raises(DataContractError) as info:
        snapshot(source, contract)

    assert expected in str(info.value)
    assert no_snapshot_left(source)


def test_a_binary_target_must_hold_0_and_1(source: Path) -> None:
    contract = DataContract(rules=(ColumnRule("is_raining", "binary_target", "dataset.target"),))
    rewrite(files_of(source)[3], lambda f: f.assign(is_raining=f["is_raining"].where(f.index != 0, 2)))

    with pytest.raises(DataContractError, match=r"dataset.target: column 'is_raining' must hold 0/1 .* holds \[2\]"):
        snapshot(source, contract)
    assert no_snapshot_left(source)


def test_a_gate_slice_with_bins_needs_numbers(source: Path) -> None:
    contract = DataContract(rules=(ColumnRule("pickup_zone", "binned", "gate.slices[0].column"),))

    with pytest.raises(DataContractError, match=r"gate.slices\[0\].column: .* remove the slice's bins"):
        snapshot(source, contract)


@pytest.mark.parametrize("with_contract", [True, False])
def test_strings_in_a_numeric_column_of_one_partition_name_that_file(
    source: Path, contract: DataContract, with_contract: bool
) -> None:
    # Today pd.concat makes an object column and pyarrow fails with "Could not convert '5.33' with type str".
    odd = files_of(source)[10]
    rewrite(odd, lambda f: f.assign(distance_km=f["distance_km"].map(lambda v: f"{v:.2f}".replace(".", ","))))

    with pytest.raises(DataContractError) as info:
        snapshot(source, contract if with_contract else None)

    message = str(info.value)
    assert "column 'distance_km' holds text (e.g. '" in message
    assert repr(str(odd)) in message
    assert "but numbers in the other 59 file(s)" in message
    assert no_snapshot_left(source)


def test_a_column_of_mixed_values_within_one_file_names_it() -> None:
    mixed = pd.DataFrame({"zone": pd.Series(["a", 3, "b"], dtype=object), "n": [1, 2, 3]})
    clean = pd.DataFrame({"zone": ["c"], "n": [4]})

    with pytest.raises(DataContractError, match=r"column 'zone' holds mixed values .* within 'day1.csv'"):
        check_file_types([("day1.csv", mixed), ("day2.csv", clean)])


def test_files_whose_types_agree_look_up_no_example(monkeypatch: pytest.MonkeyPatch) -> None:
    files = [(f"day{i}.csv", pd.DataFrame({"zone": ["a", None], "n": [1.5, 2.0]})) for i in range(3)]

    def example(values: Any) -> Any:
        raise AssertionError(f"an example of {values.name!r} was looked up for no message")

    monkeypatch.setattr(conformance, "_example", example)

    check_file_types(files)


def test_kinds_found_in_other_processes_give_the_same_refusal() -> None:
    late = [None] * 300 + ["1,5"]  # the first present value lies past the head that is looked at first
    files = [(f"day{i}.csv", pd.DataFrame({"km": [1.0] * 301})) for i in range(2)]
    files.append(("day9.csv", pd.DataFrame({"km": pd.Series(late, dtype=object)})))

    with pytest.raises(DataContractError) as here:
        check_file_types(files)
    with pytest.raises(DataContractError) as there:
        check_kinds([(path, file_kinds(frame)) for path, frame in files])

    assert "column 'km' holds text (e.g. '1,5') in 'day9.csv', but numbers in the other 2 file(s)" in str(here.value)
    assert str(there.value) == str(here.value)


def test_days_missing_inside_an_explicit_window_are_listed_in_the_manifest(source: Path) -> None:
    for day in ("2026-01-10", "2026-01-12", "2026-01-13"):
        shutil.rmtree(source / f"date={day}")

    manifest = snapshot(source, None, start=dt.date(2026, 1, 8), end=dt.date(2026, 3, 7))

    # The demo's partitions end on 2026-03-05: the two asked-for days after it are missing too.
    assert manifest.missing_days == ["2026-01-10", "2026-01-12..2026-01-13", "2026-03-06..2026-03-07"]
    assert manifest.partitions[0] == "2026-01-08"
    warnings = manifest.warnings()
    assert len(warnings) == 1
    assert "5 day(s) inside the run's window have no partition" in warnings[0]
    assert "2026-01-12..2026-01-13" in warnings[0]


def test_window_days_lists_gaps_but_not_the_days_before_the_city_began(source: Path) -> None:
    shutil.rmtree(source / "date=2026-02-20")

    manifest = snapshot(source, None, window_days=90)  # the city has 60 days of data

    assert manifest.missing_days == ["2026-02-20"]


def test_missing_days_are_compact_ranges() -> None:
    present = [dt.date(2026, 1, d) for d in (1, 2, 5, 9)]

    assert missing_days(dt.date(2026, 1, 1), dt.date(2026, 1, 10), present) == [
        "2026-01-03..2026-01-04",
        "2026-01-06..2026-01-08",
        "2026-01-10",
    ]


def test_missing_days_of_a_window_to_the_end_of_time_cost_no_more_than_its_partitions() -> None:
    # A window ending 9999-12-31 used to walk 2.9 million days (seconds), then overflow past date.max.
    started = dt.datetime.now()

    found = missing_days(dt.date(2026, 1, 1), dt.date.max, [dt.date(2026, 1, 1), dt.date(2026, 1, 3), dt.date.max])

    assert found == ["2026-01-02", "2026-01-04..9999-12-30"]
    assert (dt.datetime.now() - started).total_seconds() < 0.5


def test_rows_outside_their_partition_are_counted_per_partition(source: Path, contract: DataContract) -> None:
    late = source / "date=2026-01-06" / "part-initial.parquet"
    rewrite(
        late, lambda f: f.assign(pickup_at=f["pickup_at"].where(f.index >= 7, f["pickup_at"] + pd.Timedelta(days=1)))
    )
    early = source / "date=2026-02-01" / "part-initial.parquet"
    rewrite(early, lambda f: f.assign(pickup_at=f["pickup_at"].where(f.index != 0, pd.Timestamp("2025-12-31"))))

    manifest = snapshot(source, contract)

    assert manifest.rows_outside_partition == {"2026-01-06": 7, "2026-02-01": 1}
    assert manifest.row_count == sum(len(pd.read_parquet(p)) for p in files_of(source))
    assert any("8 row(s) have a time outside their date= partition" in w for w in manifest.warnings())


def test_row_filters_drop_null_targets_and_the_manifest_counts_each(source: Path, contract: DataContract) -> None:
    # Real data: trips whose duration was never observed, and a few zero distances.
    for index, path in enumerate(files_of(source)):
        rewrite(
            path,
            lambda f, i=index: f.assign(
                duration_min=f["duration_min"].where(f.index % 20 != i % 20),
                distance_km=f["distance_km"].where(f.index != 1, 0.0),
            ),
        )
    raw = pd.concat([pd.read_parquet(p) for p in files_of(source)], ignore_index=True)
    nulls = int(raw["duration_min"].isna().sum())
    zeros = int(((raw["distance_km"] <= 0) & raw["duration_min"].notna()).sum())
    assert nulls > 0
    assert zeros > 0
    filtered = DataContract(
        rules=contract.rules,
        filters=(
            RowFilter("duration_min", "not_null", None, "dataset.filters[0]"),
            RowFilter("distance_km", ">", 0, "dataset.filters[1]"),
        ),
        time_column=contract.time_column,
    )

    manifest = snapshot(source, filtered)

    assert [(f["field"], f["filter"], f["dropped"]) for f in manifest.filters] == [
        ("dataset.filters[0]", "duration_min not_null", nulls),
        ("dataset.filters[1]", "distance_km > 0", zeros),
    ]
    assert manifest.row_count == len(raw) - nulls - zeros
    assert manifest.filtered_rows == nulls + zeros
    rows = read_snapshot(manifest.uri)
    assert rows["duration_min"].notna().all()
    assert (rows["distance_km"] > 0).all()
    summary = summarize(str(source.parents[2]), "ride_duration", "lisbon", RUN_ID, "initial", "success")
    assert summary.rows == f"{manifest.row_count:,} (-{nulls + zeros:,} filtered)"


def test_a_filter_that_drops_every_row_names_it_and_leaves_no_snapshot(source: Path, contract: DataContract) -> None:
    filtered = DataContract(
        rules=contract.rules,
        filters=(
            RowFilter("duration_min", "not_null", None, "dataset.filters[0]"),
            RowFilter("distance_km", ">", 1000, "dataset.filters[1]"),
        ),
    )

    with pytest.raises(DataContractError) as info:
        snapshot(source, filtered)

    message = str(info.value)
    assert message.startswith("dataset.filters[1] (distance_km > 1000) drops every one of the ")
    assert "column 'distance_km' holds values from " in message
    assert no_snapshot_left(source)


def test_a_filter_comparing_text_with_a_number_is_refused_before_it_runs(source: Path) -> None:
    contract = DataContract(filters=(RowFilter("pickup_zone", "==", 3, "dataset.filters[0]"),))

    with pytest.raises(DataContractError, match=r"dataset.filters\[0\] \(pickup_zone == 3\): compares numbers"):
        snapshot(source, contract)


@pytest.mark.parametrize(
    ("row_filter", "kept"),
    [
        (RowFilter("x", "not_null"), [0, 1, 2, 4]),
        (RowFilter("x", "is_null"), [3]),
        (RowFilter("x", "==", 2.0), [1]),
        (RowFilter("x", "!=", 2.0), [0, 2, 4]),  # a null never passes a comparison
        (RowFilter("x", "<", 3.0), [0, 1]),
        (RowFilter("x", "<=", 3.0), [0, 1, 2]),
        (RowFilter("x", ">", 3.0), [4]),
        (RowFilter("x", ">=", 3.0), [2, 4]),
        (RowFilter("x", "in", (1.0, 5.0)), [0, 4]),
        (RowFilter("x", "not_in", (1.0, 5.0)), [1, 2]),
        (RowFilter("z", "==", "a"), [0, 3]),
        (RowFilter("z", "not_in", ("a",)), [1]),
    ],
)
def test_each_filter_op_keeps_the_rows_that_pass(row_filter: RowFilter, kept: list[int]) -> None:
    frame = pd.DataFrame(
        {
            "id": [0, 1, 2, 3, 4],
            "x": [1.0, 2.0, 3.0, None, 5.0],
            "z": pd.array(["a", "b", None, "a", None], dtype="string"),
        }
    )

    rows, applied = apply_filters(frame, [row_filter])

    assert rows["id"].tolist() == kept
    assert applied[0]["dropped"] == 5 - len(kept)
