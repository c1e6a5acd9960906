"""Snapshot retention on an ``s3://`` data root (moto in server mode), through the CLI and the aws connection.

The same fsspec code paths as on a local disk: one listing of the snapshot prefix, the manifests' S3
``LastModified`` as their age, a recursive delete of an unregistered snapshot's prefix.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from airflow_ml.cli import main
from airflow_ml.data.snapshot import take_snapshot
from airflow_ml.hooks.storage_credentials import storage_options
from tests.support.s3_servers import moto_endpoint, s3_client
from tests.support.worlds import copy_template

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """moto's S3 on a free loopback port, with ``aws_default`` pointing at it."""
    with moto_endpoint() as url:
        yield url


@pytest.fixture
def world(endpoint: str, tmp_path: Path) -> dict[str, Any]:
    from mlflow import MlflowClient

    s3 = s3_client(endpoint)
    bucket = f"retention-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    data_root = f"s3://{bucket}/ml"
    source = tmp_path / "raw" / "date=2026-01-05"
    source.mkdir(parents=True)
    pd.DataFrame({"x": [1.0], "y": [2.0]}).to_parquet(source / "part.parquet")
    options = storage_options(data_root, aws_conn_id="aws_default")
    uris = {}
    for run in ("s1", "s2", "s3"):
        uris[run] = take_snapshot(
            str(source.parent), f"{data_root}/snapshots", template="ride_duration", city="oslo", run_id=run,
            storage_options=options,
        ).uri  # fmt: skip
        time.sleep(1.1)  # S3 times have one-second steps: the runs' order must show in LastModified
    for name in ("manifest.json", "data.parquet"):  # a snapshot of the layout before aa4a0ef
        s3.put_object(Bucket=bucket, Key=f"ml/snapshots/oslo/old/{name}", Body=b"{}")
    templates = tmp_path / "dag_templates"
    copy_template(templates, "ride_duration", "retention:\n  keep_last: 1\n")
    (templates / "cities" / "oslo.yaml").write_text("city: oslo\ntemplate: ride_duration\n", encoding="utf-8")
    store = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(tracking_uri=store, registry_uri=store)
    client.create_registered_model("ride_duration.oslo")
    version = client.create_model_version("ride_duration.oslo", "x", tags={"airflow_ml.snapshot_uri": uris["s1"]})
    client.set_registered_model_alias("ride_duration.oslo", "champion", version.version)
    args = ["snapshots", "prune", "--root", str(templates), "--data-root", data_root, "--tracking-uri", store]
    return {"s3": s3, "bucket": bucket, "uris": uris, "args": args}


def _left(world: dict[str, Any]) -> list[str]:
    listed = world["s3"].list_objects_v2(Bucket=world["bucket"], Prefix="ml/snapshots/")
    folders = {key["Key"].rsplit("/", 1)[0] for key in listed.get("Contents", [])}
    return sorted(folder.removeprefix("ml/snapshots/").rsplit("-", 1)[0] for folder in folders)


def test_prune_on_s3_keeps_the_registered_and_the_newest_and_deletes_the_rest(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    before = ["oslo/old", "ride_duration/oslo/s1", "ride_duration/oslo/s2", "ride_duration/oslo/s3"]
    assert _left(world) == before

    assert main([*world["args"], "--dry-run"]) == 0
    assert _left(world) == before
    assert f"would delete {world['uris']['s2']}  not registered" in capsys.readouterr().out

    assert main(world["args"]) == 0
    out = capsys.readouterr().out
    assert f"keep         {world['uris']['s1']}  registered: ride_duration.oslo v1 (champion)" in out
    assert f"keep         {world['uris']['s3']}  one of the newest 1" in out
    assert f"keep         s3://{world['bucket']}/ml/snapshots/oslo/old  old layout" in out
    assert _left(world) == ["oslo/old", "ride_duration/oslo/s1", "ride_duration/oslo/s3"]
