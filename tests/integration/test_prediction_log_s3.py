"""The prediction log on S3 (moto in server mode, s3fs with explicit storage options): replace, read, errors."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest

from airflow_ml.data.prediction_log import PART_FILE, LogColumns, read_predictions, write_predictions
from airflow_ml.exceptions import DataError
from tests.support.predictions import scoring_context
from tests.support.s3_servers import S3_KEYS, moto_endpoint, s3_client

pytestmark = pytest.mark.integration

DAY = dt.date(2026, 3, 1)
CONTEXT = scoring_context(model_version="7")


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with moto_endpoint() as url:
        yield url


@pytest.fixture
def options(endpoint: str) -> dict[str, Any]:
    """The storage options an operator would build from an ``aws`` connection (no listing cache)."""
    keys = {"key": S3_KEYS["login"], "secret": S3_KEYS["password"]}
    s3 = {**keys, "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"}, "use_listings_cache": False}
    return {"s3": s3}


@pytest.fixture
def root(endpoint: str) -> str:
    name = f"airflow-ml-{uuid.uuid4().hex[:12]}"
    s3_client(endpoint).create_bucket(Bucket=name)
    return f"s3://{name}/lake"


def _write(root: str, rows: int, options: dict[str, Any], **kwargs: Any) -> str:
    frame = pd.DataFrame({"trip_id": [f"t{i}" for i in range(rows)], "zone": ["a"] * rows})
    columns = LogColumns(key=("trip_id",), keep=("zone",))
    return write_predictions(
        root, DAY, frame, [float(i) for i in range(rows)], CONTEXT, columns, storage_options=options, **kwargs
    ).uri


def test_a_rerun_on_s3_replaces_the_day_with_the_same_bytes(root: str, options: dict[str, Any]) -> None:
    from airflow_ml.data.storage import filesystem

    uri = _write(root, 5, options)
    fs, folder = filesystem(uri, options)
    first = fs.cat_file(f"{folder}/{PART_FILE}")
    _write(root, 2, options)
    assert len(read_predictions(root, "ride_duration", "lisbon", DAY, DAY, storage_options=options)) == 2

    _write(root, 5, options)

    assert fs.cat_file(f"{folder}/{PART_FILE}") == first
    assert [path.rsplit("/", 1)[-1] for path in fs.ls(folder, detail=False)] == [PART_FILE]
    frame = read_predictions(root, "ride_duration", "lisbon", DAY, DAY, storage_options=options)
    assert frame["trip_id"].tolist() == [f"t{i}" for i in range(5)]
    assert read_predictions(root, "ride_duration", "porto", DAY, DAY, storage_options=options).empty


def test_a_missing_bucket_names_the_partition_and_the_fix(endpoint: str, options: dict[str, Any]) -> None:
    root = f"s3://no-such-bucket-{uuid.uuid4().hex[:8]}/lake"

    with pytest.raises(DataError, match=r"cannot write the prediction log partition 's3://no-such-bucket-.*create its"):
        _write(root, 2, options)
