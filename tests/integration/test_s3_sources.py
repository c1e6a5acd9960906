"""City data on S3 (parquet and CSV) through an Airflow ``aws`` connection, against moto in server mode.

moto serves the S3 API on loopback in this process; a real boto3 client uploads the demo partitions, and
the code under test reaches it over HTTP through s3fs with the options the amazon provider builds from
``AIRFLOW_CONN_AWS_DEFAULT`` (keys, region, ``endpoint_url``).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from airflow_ml.data.demo import write_demo_data
from airflow_ml.data.snapshot import (
    DATA_FILE,
    MANIFEST,
    content_hash,
    load_manifest,
    read_snapshot,
    snapshot_location,
    take_snapshot,
)
from airflow_ml.exceptions import DataError
from airflow_ml.hooks.storage_credentials import storage_options
from tests.support import REPO
from tests.support.mlflow_stores import wire_mlflow
from tests.support.s3_servers import aws_connection, moto_endpoint, s3_client
from tests.support.worlds import write_loader

pytestmark = pytest.mark.integration

CITY = "lisbon"
S3_CITY = "lisbon_on_s3"
RUN_ID = "manual__2026-03-01T02:00:00+00:00"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """moto's S3 on a free loopback port, with ``aws_default`` pointing at it."""
    with moto_endpoint() as url:
        yield url


@pytest.fixture(scope="module")
def s3(endpoint: str) -> Any:
    """A real boto3 client of the moto server (the test's own hands; the code under test uses s3fs)."""
    return s3_client(endpoint)


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Demo partitions of one city on local disk, as parquet and as CSV (same rows)."""
    root = tmp_path_factory.mktemp("lake")
    write_demo_data(root, cities=[CITY], batch="initial", scale=0.1)
    for path in sorted((root / "raw" / "trips" / CITY).glob("date=*/*.parquet")):
        target = root / "csv" / CITY / path.parent.name / path.with_suffix(".csv").name
        target.parent.mkdir(parents=True, exist_ok=True)
        pd.read_parquet(path).to_csv(target, index=False)
    return root


def _upload(s3: Any, folder: Path, bucket: str, prefix: str, days: int | None = None) -> str:
    """Upload ``folder``'s ``date=`` partitions (the first ``days`` of them) under ``s3://bucket/prefix``."""
    partitions = sorted(folder.glob("date=*"))[:days]
    for partition in partitions:
        for path in sorted(partition.iterdir()):
            s3.upload_file(str(path), bucket, f"{prefix}/{partition.name}/{path.name}")
    return f"s3://{bucket}/{prefix}"


def _bucket(s3: Any) -> str:
    name = f"airflow-ml-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="module")
def bucket(s3: Any, lake: Path) -> str:
    """A bucket holding the city's parquet and CSV partitions."""
    name = _bucket(s3)
    _upload(s3, lake / "raw" / "trips" / CITY, name, f"raw/trips/{CITY}")
    _upload(s3, lake / "csv" / CITY, name, f"raw/csv/{CITY}")
    return name


@pytest.fixture
def small(s3: Any, lake: Path) -> str:
    """A fresh bucket with three days of parquet partitions that a test may break; returns the source URL."""
    return _upload(s3, lake / "raw" / "trips" / CITY, _bucket(s3), f"raw/trips/{CITY}", days=3)


def _options(*uris: str) -> dict[str, Any]:
    return storage_options(*uris, aws_conn_id="aws_default")


def _object(s3: Any, uri: str) -> dict[str, Any]:
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    return s3.head_object(Bucket=bucket, Key=key)


def _snapshot_errors(source: str, **kwargs: Any) -> str:
    root = f"s3://{source.removeprefix('s3://').split('/', 1)[0]}/failed-snapshots/{uuid.uuid4().hex}"
    with pytest.raises(DataError) as info:
        take_snapshot(
            source, root, template="ride_duration", city=CITY, run_id=RUN_ID, storage_options=_options(source), **kwargs
        )
    return str(info.value)


def test_snapshot_from_s3_parquet_equals_the_local_one_and_is_reused(
    s3: Any, bucket: str, lake: Path, tmp_path: Path
) -> None:
    source = f"s3://{bucket}/raw/trips/{CITY}"
    root = f"s3://{bucket}/snapshots"
    options = _options(source, root)

    manifest = take_snapshot(source, root, template="ride_duration", city=CITY, run_id=RUN_ID, storage_options=options)
    local = take_snapshot(
        str(lake / "raw" / "trips" / CITY), str(tmp_path), template="ride_duration", city=CITY, run_id=RUN_ID
    )

    assert manifest.uri == snapshot_location(root, "ride_duration", CITY, RUN_ID)
    assert manifest.uri.startswith(f"s3://{bucket}/snapshots/ride_duration/{CITY}/")
    assert manifest.source == source
    assert manifest.content_hash == local.content_hash
    assert (manifest.row_count, manifest.partitions, manifest.columns) == (
        local.row_count,
        local.partitions,
        local.columns,
    )
    assert json.loads(s3.get_object(Bucket=bucket, Key=_key(manifest.uri, MANIFEST))["Body"].read()) == (
        manifest.to_dict()
    )
    assert load_manifest(manifest.uri, storage_options=options) == manifest
    assert content_hash(read_snapshot(manifest.uri, storage_options=options)) == manifest.content_hash

    before = {name: _object(s3, f"{manifest.uri}/{name}") for name in (DATA_FILE, MANIFEST)}
    time.sleep(1.1)  # LastModified has a resolution of one second: a rewrite would show
    again = take_snapshot(
        source, root, template="ride_duration", city=CITY, run_id=RUN_ID, storage_options=_options(source, root)
    )

    assert again == manifest
    for name, head in before.items():
        after = _object(s3, f"{manifest.uri}/{name}")
        assert (after["ETag"], after["LastModified"]) == (head["ETag"], head["LastModified"])


def _key(uri: str, name: str) -> str:
    return f"{uri.removeprefix('s3://').split('/', 1)[1]}/{name}"


def test_snapshot_from_s3_csv_parses_the_time_column_and_writes_parquet(
    s3: Any, bucket: str, lake: Path, tmp_path: Path
) -> None:
    source = f"s3://{bucket}/raw/csv/{CITY}"
    root = f"s3://{bucket}/csv-snapshots"
    options = _options(source, root)

    manifest = take_snapshot(
        source,
        root,
        template="ride_duration",
        city=CITY,
        run_id=RUN_ID,
        fmt="csv",
        parse_dates=["pickup_at"],
        storage_options=options,
    )
    local = take_snapshot(
        str(lake / "csv" / CITY),
        str(tmp_path),
        template="ride_duration",
        city=CITY,
        run_id=RUN_ID,
        fmt="csv",
        parse_dates=["pickup_at"],
    )

    assert manifest.content_hash == local.content_hash
    assert manifest.row_count == local.row_count == len(read_snapshot(local.uri))
    assert manifest.columns["pickup_at"].startswith("datetime64")
    assert manifest.columns["distance_km"] == "float64"
    body = s3.get_object(Bucket=bucket, Key=_key(manifest.uri, DATA_FILE))["Body"].read()
    schema = pq.read_schema(io.BytesIO(body))  # the snapshot is parquet whatever the source format
    assert pa.types.is_timestamp(schema.field("pickup_at").type)
    frame = read_snapshot(manifest.uri, storage_options=options)
    assert content_hash(frame) == manifest.content_hash
    parquet = pd.read_parquet(sorted((lake / "raw" / "trips" / CITY).glob("date=*/*.parquet"))[0])
    assert frame["pickup_at"].iloc[0] == parquet["pickup_at"].iloc[0]


def test_missing_source_prefix_names_the_url(bucket: str) -> None:
    source = f"s3://{bucket}/raw/trips/nowhere"

    message = _snapshot_errors(source)

    assert f"data source {source!r} does not exist" in message
    assert "AIRFLOW_ML_DATA_ROOT" in message


def test_missing_bucket_is_named(endpoint: str) -> None:
    source = "s3://no-such-bucket-airflow-ml/raw/trips/lisbon"

    message = _snapshot_errors(source)

    assert "bucket 'no-such-bucket-airflow-ml' does not exist" in message
    assert source in message


def test_window_without_partition_names_the_source_and_the_dates(small: str) -> None:
    message = _snapshot_errors(small, start=dt.date(2030, 1, 1))

    assert f"no partition of {small!r} falls in the window" in message
    assert "2026-01-05 to 2026-01-07" in message


def test_partition_without_data_file_names_it(s3: Any, small: str) -> None:
    bucket, prefix = small.removeprefix("s3://").split("/", 1)
    s3.put_object(Bucket=bucket, Key=f"{prefix}/date=2026-01-08/_SUCCESS", Body=b"")
    s3.put_object(Bucket=bucket, Key=f"{prefix}/date=2026-01-08/", Body=b"")  # a console-made "folder"

    message = _snapshot_errors(small)

    assert f"partition '{small}/date=2026-01-08' holds no .parquet file" in message


def test_partition_of_zero_rows_names_it(s3: Any, small: str, lake: Path) -> None:
    bucket, prefix = small.removeprefix("s3://").split("/", 1)
    empty = pd.read_parquet(next((lake / "raw" / "trips" / CITY).glob("date=*/*.parquet"))).head(0)
    buffer = io.BytesIO()
    empty.to_parquet(buffer, index=False)
    s3.put_object(Bucket=bucket, Key=f"{prefix}/date=2026-01-08/part-initial.parquet", Body=buffer.getvalue())

    message = _snapshot_errors(small)

    assert f"partition '{small}/date=2026-01-08' holds no rows" in message


def test_zero_byte_file_names_it(s3: Any, small: str) -> None:
    bucket, prefix = small.removeprefix("s3://").split("/", 1)
    s3.put_object(Bucket=bucket, Key=f"{prefix}/date=2026-01-06/part-late.parquet", Body=b"")

    message = _snapshot_errors(small)

    assert f"'{small}/date=2026-01-06/part-late.parquet' is empty (0 bytes)" in message


def test_unreadable_file_names_it(s3: Any, small: str) -> None:
    bucket, prefix = small.removeprefix("s3://").split("/", 1)
    s3.put_object(Bucket=bucket, Key=f"{prefix}/date=2026-01-06/part-late.parquet", Body=b"not parquet at all")

    message = _snapshot_errors(small)

    assert f"cannot read '{small}/date=2026-01-06/part-late.parquet' as parquet" in message


def test_snapshot_root_in_a_missing_bucket_names_it(small: str) -> None:
    root = "s3://no-such-bucket-airflow-ml/snapshots"

    with pytest.raises(DataError) as info:
        take_snapshot(
            small, root, template="ride_duration", city=CITY, run_id=RUN_ID, storage_options=_options(small, root)
        )

    assert f"cannot write to {snapshot_location(root, 'ride_duration', CITY, RUN_ID)!r}" in str(info.value)


def test_unreachable_endpoint_fails_fast_and_names_it(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        down = f"http://127.0.0.1:{probe.getsockname()[1]}"
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DOWN", aws_connection(down))
    source = "s3://lake/raw/trips/lisbon"

    started = time.monotonic()
    with pytest.raises(DataError) as info:
        take_snapshot(
            source,
            "s3://lake/snapshots",
            template="ride_duration",
            city=CITY,
            run_id=RUN_ID,
            storage_options=storage_options(source, aws_conn_id="aws_down"),
        )

    assert time.monotonic() - started < 30
    message = str(info.value)
    assert "cannot reach the storage of 's3://lake/" in message
    assert f" at {down} " in message
    assert "endpoint_url" in message


@pytest.fixture
def s3_world(
    s3: Any, lake: Path, tmp_path: Path, airflow_db: Path, dags_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """A city whose data root is on S3: raw partitions and snapshots; MLflow stays local.

    The city has an id of its own (with lisbon's demo data), so its DAG clashes with no other test's.
    """
    city = S3_CITY
    root = tmp_path / "world"
    (root / "templates").mkdir(parents=True)
    (root / "cities").mkdir()
    shutil.copy(REPO / "dag_templates" / "templates" / "ride_duration.yaml", root / "templates")
    (root / "cities" / f"{city}.yaml").write_text(
        f"city: {city}\ntemplate: ride_duration\ndag:\n  retries: 0\n  schedule: null\n", encoding="utf-8"
    )
    write_loader(dags_dir, f"world_s3_{uuid.uuid4().hex[:8]}", root)
    bucket = _bucket(s3)
    _upload(s3, lake / "raw" / "trips" / CITY, bucket, f"root/raw/trips/{city}")
    data_root = f"s3://{bucket}/root"
    monkeypatch.setenv("AIRFLOW_ML_DATA_ROOT", data_root)
    store = wire_mlflow(tmp_path / "mlflow", monkeypatch)
    return {"templates": root, "bucket": bucket, "data_root": data_root, "store": store}


def test_dag_with_data_root_on_s3_makes_a_champion(s3: Any, s3_world: dict[str, Any]) -> None:
    from mlflow import MlflowClient

    from airflow_ml.factory import register_dags

    model = f"ride_duration.{S3_CITY}"
    dag = register_dags({}, templates_root=s3_world["templates"], expectations_dir=REPO / "expectations")[model]

    run = dag.test()

    assert str(run.state) == "success"
    snapshot = snapshot_location(f"{s3_world['data_root']}/snapshots", "ride_duration", S3_CITY, run.run_id)
    bucket = s3_world["bucket"]
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=_key(snapshot, ""))
    names = {item["Key"].rsplit("/", 1)[1] for item in listed.get("Contents", [])}
    assert {DATA_FILE, MANIFEST, "validation.json", "decision.json"} <= names
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=_key(snapshot, MANIFEST))["Body"].read())
    decision = json.loads(s3.get_object(Bucket=bucket, Key=_key(snapshot, "decision.json"))["Body"].read())
    assert decision["decision"] == "promoted"
    assert decision["snapshot_uri"] == snapshot
    store = s3_world["store"]
    client = MlflowClient(tracking_uri=store["tracking_uri"], registry_uri=store["tracking_uri"])
    champion = client.get_model_version_by_alias(model, "champion")
    assert champion.tags["airflow_ml.snapshot_hash"] == manifest["content_hash"]
    assert champion.tags["airflow_ml.snapshot_uri"] == snapshot
