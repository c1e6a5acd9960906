"""The retraining DAG with ``training.engine: dask`` and the city's data root on S3 (issue 17): real Airflow
``dag.test()``, GX, LightGBM, MLflow, a real two-process ``distributed.LocalCluster`` and moto's S3 server.

The raw partitions are on S3 only (the local copy is removed before the run), and the snapshot is written there
as partitioned parquet by the workers. The workers start in an environment with no AWS credential, file or
endpoint, so boto's default chain finds nothing there: what they read and write on S3 they reach only with the
storage options the tasks hand them (built in the task's process from ``aws_default``). Nothing secret may
land in the snapshot's files or in MLflow.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.airflow_runs import task_states
from tests.support.dask_clusters import dask_city, process_cluster
from tests.support.s3_servers import S3_KEYS, moto_endpoint, s3_client
from tests.support.worlds import city_world

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # a Dask cluster per test: make test-slow
TEMPLATE = "dask_s3"
CITY = "lisbon"
MODEL = f"{TEMPLATE}.{CITY}"
#: Few rows (the demo's scale 0.1), few rounds, no bootstrap, no health check (it reads the snapshot on the workers
#: as the gate does): the test is about where the data lives.
EXTRA = (
    dask_city("dask_s3", rounds=20, drift=False) + "gate:\n  bootstrap: null\n  slices: []\nhealth:\n  enabled: false\n"
)
SECRET = S3_KEYS["password"].encode()


def machine_credentials() -> dict[str, Any]:
    """In a worker: its AWS (and Airflow connection) variables, whether boto's default chain finds credentials
    there, and whether s3fs was loaded (by a task that opened S3)."""
    import botocore.session

    environ = {k: v for k, v in os.environ.items() if k.startswith(("AWS_", "AIRFLOW_CONN_"))}
    found = botocore.session.get_session().get_credentials() is not None
    return {"environ": environ, "chain": found, "s3fs": "s3fs" in sys.modules}


@pytest.fixture
def bare_cluster() -> Iterator[Any]:
    """Two worker processes started where no AWS credential, config file, endpoint or instance role is found."""
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith(("AWS_", "AIRFLOW_CONN_")):
                mp.delenv(name)
        mp.setenv("AWS_CONFIG_FILE", "/dev/null")
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        mp.setenv("AWS_EC2_METADATA_DISABLED", "true")
        with process_cluster() as cluster:
            yield cluster


def _upload(s3: Any, folder: Path, bucket: str, prefix: str) -> int:
    count = 0
    for path in sorted(folder.rglob("*.parquet")):
        s3.upload_file(str(path), bucket, f"{prefix}/{path.relative_to(folder).as_posix()}")
        count += 1
    return count


def _objects(s3: Any, bucket: str, prefix: str) -> dict[str, bytes]:
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]
    return {key.removeprefix(prefix): s3.get_object(Bucket=bucket, Key=key)["Body"].read() for key in keys}


def test_the_dask_dag_reads_and_snapshots_on_s3_with_the_tasks_storage_options_only(
    tmp_path: Path, airflow_db: Path, dags_dir: Path, bare_cluster: Any
) -> None:
    from distributed import Client

    from airflow_ml.data.dask_snapshot import verify_snapshot
    from airflow_ml.data.snapshot import load_manifest, snapshot_location
    from airflow_ml.hooks.storage_credentials import storage_options

    with (
        moto_endpoint() as endpoint,
        pytest.MonkeyPatch.context() as mp,
        Client(bare_cluster.scheduler_address, set_as_default=False) as probe,
    ):
        mp.setenv("AIRFLOW_CONN_DASK_S3", json.dumps({"conn_type": "dask", "host": bare_cluster.scheduler_address}))
        s3 = s3_client(endpoint)
        bucket = f"airflow-ml-{uuid.uuid4().hex[:12]}"
        s3.create_bucket(Bucket=bucket)
        with city_world(tmp_path, dags_dir, CITY, extra=EXTRA, template=TEMPLATE, scale=0.1) as world:
            local = world["data_root"]
            uploaded = _upload(s3, local / "raw" / "trips" / CITY, bucket, f"root/raw/trips/{CITY}")
            shutil.rmtree(local)  # nothing can be read from local disk
            data_root = f"s3://{bucket}/root"
            with pytest.MonkeyPatch.context() as root:
                root.setenv("AIRFLOW_ML_DATA_ROOT", data_root)

                run = world["build"]().test()

                states = task_states(MODEL, run.run_id)
                snapshot = snapshot_location(f"{data_root}/snapshots", TEMPLATE, CITY, run.run_id)
                options = storage_options(snapshot)
                manifest = load_manifest(snapshot, storage_options=options)
                rehashed = verify_snapshot(snapshot, storage_options=options, client=probe)
            workers = probe.run(machine_credentials)
            client = world["client"]
            champion = client.get_model_version_by_alias(MODEL, "champion")
            experiment = client.get_experiment_by_name(MODEL)
            runs = client.search_runs([experiment.experiment_id])
            store = tmp_path / "mlflow"
            stored = {path: path.read_bytes() for path in store.rglob("*") if path.is_file()}
        prefix = f"{snapshot.removeprefix(f's3://{bucket}/')}/"
        written = _objects(s3, bucket, prefix)

    assert str(run.state) == "success", states
    for task in ("snapshot", "validate", "train", "register", "gate"):
        assert states[task] == "success", states
    # The snapshot is partitioned, on S3: its parts (one per source file) and its manifest, nothing local.
    assert manifest.kind == "partitioned"
    assert manifest.uri == snapshot
    assert sorted(name for name in written if name.startswith("data/")) == [p["file"] for p in manifest.parts]
    assert len(manifest.parts) == uploaded
    assert json.loads(written["manifest.json"]) == manifest.to_dict()
    assert {"validation.json", "decision.json"} <= set(written)
    assert not local.exists()
    # The hash in the manifest is that of the parts on S3, re-read and hashed on the workers.
    assert rehashed == manifest.content_hash == champion.tags["airflow_ml.snapshot_hash"]
    assert champion.tags["airflow_ml.snapshot_uri"] == snapshot
    decision = json.loads(written["decision.json"])
    assert decision["decision"] == "promoted", decision["reason"]
    assert client.get_run(champion.run_id).data.params["engine"] == "dask"
    # The workers had no credential of their own: they reached S3 with the tasks' storage options.
    assert len(workers) == 2
    for found in workers.values():
        assert found["chain"] is False
        assert set(found["environ"]) <= {"AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_EC2_METADATA_DISABLED"}
        assert found["s3fs"] is True
    # The secret key is in no file of the snapshot, no MLflow run's params or tags, no file of the MLflow store.
    assert [name for name, body in written.items() if SECRET in body] == []
    for logged in runs:
        assert SECRET.decode() not in json.dumps([logged.data.params, logged.data.tags])
    assert SECRET.decode() not in json.dumps(champion.tags)
    assert [str(path) for path, body in stored.items() if SECRET in body] == []
