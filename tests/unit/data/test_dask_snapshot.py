"""Partitioned snapshots taken on a real distributed.LocalCluster (airflow_ml.data.dask_snapshot), and the
readers of snapshots (read_snapshot, open_snapshot, verify, retention) on that kind."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest

from airflow_ml.data.contract import DataContract
from airflow_ml.data.dask_snapshot import open_snapshot, take_partitioned_snapshot, verify_snapshot
from airflow_ml.data.demo import write_demo_data
from airflow_ml.data.retention import delete_snapshots, list_snapshots, plan_retention
from airflow_ml.data.snapshot import MANIFEST, load_manifest, read_snapshot, snapshot_location, take_snapshot
from airflow_ml.data.snapshot_parts import PARTITIONED_KIND, PARTS_SCHEME, parts_hash
from airflow_ml.exceptions import DataContractError, DataError
from tests.support.partition_clusters import local_cluster
from tests.support.s3_servers import task_s3_options

RUN_ID = "manual__2026-03-01T02:00:00+00:00"


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    with local_cluster(memory_limit="1GiB") as client:
        yield client


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lake")
    write_demo_data(root, cities=["lisbon"], batch="initial", scale=0.05)
    return root


@pytest.fixture
def source(lake: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "raw" / "trips" / "lisbon"
    shutil.copytree(lake / "raw" / "trips" / "lisbon", copy)
    return copy


def snap(source: Path, root: Path, run_id: str = RUN_ID, **kwargs: Any) -> Any:
    return take_partitioned_snapshot(str(source), str(root), template="ride", city="lisbon", run_id=run_id, **kwargs)


def test_a_partitioned_snapshot_holds_the_rows_of_a_one_file_snapshot(
    source: Path, tmp_path: Path, client: Any
) -> None:
    whole = take_snapshot(str(source), str(tmp_path / "one"), template="ride", city="lisbon", run_id=RUN_ID)

    manifest = snap(source, tmp_path / "parts", client=client)

    files = sorted(source.glob("date=*/*.parquet"))
    assert (manifest.kind, manifest.hash_scheme) == (PARTITIONED_KIND, PARTS_SCHEME)
    assert load_manifest(manifest.uri) == manifest  # a partitioned manifest keeps its kind, scheme and parts
    assert [p["file"] for p in manifest.parts] == [f"data/part.{i:05d}.parquet" for i in range(len(files))]
    assert [p["rows"] for p in manifest.parts] == [pq.read_metadata(f).num_rows for f in files]
    assert manifest.row_count == whole.row_count == sum(p["rows"] for p in manifest.parts)
    assert manifest.columns == whole.columns
    assert (manifest.partitions, manifest.missing_days) == (whole.partitions, whole.missing_days)
    assert manifest.content_hash == parts_hash(manifest.parts) != whole.content_hash
    assert load_manifest(manifest.uri) == manifest
    pd.testing.assert_frame_equal(read_snapshot(manifest.uri), read_snapshot(whole.uri))
    frame, _ = open_snapshot(manifest.uri, columns=["trip_id", "duration_min"])
    assert frame.npartitions == len(manifest.parts)
    pd.testing.assert_frame_equal(
        frame.compute().reset_index(drop=True), read_snapshot(whole.uri, columns=["trip_id", "duration_min"])
    )
    assert verify_snapshot(manifest.uri, client=client) == manifest.content_hash
    assert sorted(p.name for p in Path(manifest.uri).iterdir()) == ["data", MANIFEST]


def test_the_hash_is_stable_across_runs_and_changes_with_one_row(source: Path, tmp_path: Path, client: Any) -> None:
    first = snap(source, tmp_path / "s", "run_1", client=client)
    second = snap(source, tmp_path / "s", "run_2")  # Dask's default scheduler: the same hash
    changed = sorted(source.glob("date=*/*.parquet"))[3]
    rows = pd.read_parquet(changed)
    rows.loc[rows.index[7], "duration_min"] += 0.5
    rows.to_parquet(changed, index=False)

    third = snap(source, tmp_path / "s", "run_3", client=client)

    assert second.content_hash == first.content_hash
    assert third.content_hash != first.content_hash
    differs = [a["file"] for a, b in zip(first.parts, third.parts, strict=True) if a["hash"] != b["hash"]]
    assert differs == ["data/part.00003.parquet"]


def test_a_snapshot_is_never_rewritten_and_a_retry_returns_it(source: Path, tmp_path: Path) -> None:
    first = snap(source, tmp_path / "s")
    part = Path(first.uri) / first.parts[0]["file"]
    before = part.stat().st_mtime_ns
    shutil.rmtree(sorted(source.glob("date=*"))[0])  # new data between the attempts

    again = snap(source, tmp_path / "s")

    assert again == first
    assert part.stat().st_mtime_ns == before
    assert oct(part.stat().st_mode & 0o777) == oct(0o444)
    assert oct((Path(first.uri) / MANIFEST).stat().st_mode & 0o777) == oct(0o444)


def test_an_attempt_cut_short_is_never_read_and_a_retry_completes(source: Path, tmp_path: Path) -> None:
    folder = Path(snapshot_location(str(tmp_path / "s"), "ride", "lisbon", RUN_ID))
    (folder / "data.partial-deadbeef").mkdir(parents=True)  # an attempt killed while writing its parts
    (folder / "data.partial-deadbeef" / "part.00000.parquet").write_bytes(b"cut")
    (folder / "data").mkdir()  # one killed after its rename, before its manifest
    (folder / "data" / "part.00099.parquet").write_bytes(b"stale")

    listed = list_snapshots(str(tmp_path / "s"))
    assert [(s.run, s.complete) for s in listed] == [(folder.name, False)]
    kept = plan_retention(listed, referenced={}, keep_last={("ride", "lisbon"): 0})
    assert kept[0].keep
    assert "incomplete" in kept[0].reason

    manifest = snap(source, tmp_path / "s")

    assert sorted(p.name for p in (folder / "data").iterdir()) == [Path(p["file"]).name for p in manifest.parts]
    assert verify_snapshot(manifest.uri) == manifest.content_hash
    assert list_snapshots(str(tmp_path / "s"))[0].complete


def test_retention_deletes_a_partitioned_snapshot_whole(source: Path, tmp_path: Path) -> None:
    old = snap(source, tmp_path / "s", "run_1")
    new = snap(source, tmp_path / "s", "run_2")
    listed = list_snapshots(str(tmp_path / "s"))
    verdicts = plan_retention(listed, referenced={}, keep_last={("ride", "lisbon"): 1})

    deleted = delete_snapshots(verdicts)

    assert deleted == [old.uri] if Path(old.uri).name < Path(new.uri).name else [new.uri]
    assert [Path(s.location).exists() for s in listed] == [s.location not in deleted for s in listed]


def test_data_that_breaks_the_contract_leaves_no_snapshot(source: Path, tmp_path: Path) -> None:
    odd = sorted(source.glob("date=*/*.parquet"))[2]
    rows = pd.read_parquet(odd).drop(columns=["distance_km"])
    rows.to_parquet(odd, index=False)
    contract = DataContract.from_dict({"rules": [{"column": "distance_km", "kind": "numeric", "field": "features[0]"}]})

    with pytest.raises(DataContractError, match=r"column 'distance_km' is missing from 1 of the .* partition files"):
        snap(source, tmp_path / "s", contract=contract)

    assert list((tmp_path / "s").rglob("*.parquet")) == []
    assert list((tmp_path / "s").rglob(MANIFEST)) == []


def test_filters_count_over_the_whole_and_refuse_only_when_every_row_goes(source: Path, tmp_path: Path) -> None:
    frame = read_snapshot(take_snapshot(str(source), str(tmp_path / "one"), template="r", city="c", run_id="x").uri)
    cut = float(frame["distance_km"].quantile(0.5))
    contract = DataContract.from_dict({"filters": [{"column": "distance_km", "op": ">=", "value": cut,
                                                    "field": "dataset.filters[0]"}]})  # fmt: skip

    manifest = snap(source, tmp_path / "s", contract=contract)
    whole = take_snapshot(str(source), str(tmp_path / "w"), template="ride", city="lisbon", run_id=RUN_ID,
                          contract=contract)  # fmt: skip
    everything = DataContract.from_dict({"filters": [{"column": "distance_km", "op": ">", "value": 1e9,
                                                      "field": "dataset.filters[0]"}]})  # fmt: skip

    assert manifest.filters == whole.filters
    assert manifest.row_count == whole.row_count
    with pytest.raises(DataContractError, match=r"dataset.filters\[0\] .* drops every one of the [\d,]+ rows left"):
        snap(source, tmp_path / "s2", contract=everything)


def test_types_that_differ_between_files_are_one_type_in_every_part(source: Path, tmp_path: Path) -> None:
    ints = sorted(source.glob("date=*/*.parquet"))[1]
    rows = pd.read_parquet(ints)
    rows["passengers"] = 1  # int64 here, float64 in the others
    rows.to_parquet(ints, index=False)
    for other in sorted(source.glob("date=*/*.parquet"))[2:4]:
        more = pd.read_parquet(other)
        more["passengers"] = 2.5
        more.to_parquet(other, index=False)

    manifest = snap(source, tmp_path / "s")
    whole = take_snapshot(str(source), str(tmp_path / "w"), template="ride", city="lisbon", run_id=RUN_ID)

    assert manifest.columns == whole.columns
    assert manifest.columns["passengers"] == "float64"
    pd.testing.assert_frame_equal(read_snapshot(manifest.uri), read_snapshot(whole.uri))
    assert verify_snapshot(manifest.uri) == manifest.content_hash


def test_verify_names_a_part_changed_after_the_snapshot(source: Path, tmp_path: Path) -> None:
    manifest = snap(source, tmp_path / "s")
    part = Path(manifest.uri) / manifest.parts[1]["file"]
    rows = pd.read_parquet(part)
    rows.loc[rows.index[0], "duration_min"] = -1.0
    part.chmod(0o644)
    rows.to_parquet(part, index=False)

    with pytest.raises(DataError, match=r"part data/part.00001.parquet was changed after it was taken"):
        verify_snapshot(manifest.uri)


def test_a_manifest_of_an_unknown_kind_is_refused(source: Path, tmp_path: Path) -> None:
    manifest = snap(source, tmp_path / "s")
    path = Path(manifest.uri) / MANIFEST
    path.chmod(0o644)
    path.write_text(json.dumps({**manifest.to_dict(), "kind": "sharded", "hash_scheme": "blake3"}), encoding="utf-8")

    with pytest.raises(DataError, match=r"of kind 'sharded' with hash scheme 'blake3', which this airflow-ml cannot"):
        read_snapshot(manifest.uri)


def test_the_s3_options_of_a_connection_travel_with_the_tasks_to_the_workers(
    source: Path, tmp_path: Path, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What the snapshot task passes when the data root is on S3: the provider's options, an aiobotocore session in
    # them, which the scheduler failed to unpickle ("Error during deserialization of the task graph"). Local files
    # here (no network): the tasks carry the options all the same.
    options = task_s3_options(monkeypatch)

    manifest = snap(source, tmp_path / "s", storage_options=options, client=client)

    assert verify_snapshot(manifest.uri, storage_options=options, client=client) == manifest.content_hash
