"""Storage options by protocol (airflow_ml.data.storage) and their resolution from Airflow connections
(airflow_ml.hooks.storage_credentials), down to the operators of a city's DAG. No network: resolving keys is local.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from airflow_ml.data.storage import filesystem, protocol, shippable_options, storage_errors
from airflow_ml.exceptions import StorageUnreachable
from airflow_ml.hooks.storage_credentials import FAIL_FAST_CONFIG, storage_options
from airflow_ml.templates import load_city_configs
from tests.support import REPO

KEYS = {"login": "unit-test-access-key", "password": "unit-test-secret-key"}


def _connection(monkeypatch: pytest.MonkeyPatch, conn_id: str, extra: dict[str, object]) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "aws", **KEYS, "extra": extra}))


@pytest.mark.parametrize(
    ("uri", "expected"),
    [("s3://bucket/key", "s3"), ("S3A://bucket/key", "s3a"), ("/srv/data", "file"), ("file:///srv/data", "file")],
)
def test_protocol(uri: str, expected: str) -> None:
    assert protocol(uri) == expected


def test_filesystem_applies_only_the_options_of_its_protocol(tmp_path: Path) -> None:
    # Options for S3 (here nonsense for a local disk) must not reach the local filesystem.
    fs, path = filesystem(str(tmp_path), {"s3": {"endpoint_url": "http://127.0.0.1:1"}})

    assert fs.protocol[0] == "file"
    assert path == str(tmp_path)


def test_local_uris_need_no_connection() -> None:
    # The connection does not exist: it must not even be looked up.
    assert storage_options("/srv/data/raw", "file:///srv/snapshots", aws_conn_id="no_such_connection") == {}


def test_s3_options_come_from_the_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    _connection(monkeypatch, "aws_lake", {"endpoint_url": "http://127.0.0.1:9000", "region_name": "eu-west-1"})

    options = storage_options("/srv/data", "s3://bucket/root", aws_conn_id="aws_lake")

    s3 = options["s3"]
    assert options["s3a"] is s3
    assert s3["endpoint_url"] == "http://127.0.0.1:9000"
    assert s3["use_listings_cache"] is False
    assert s3["config_kwargs"] == FAIL_FAST_CONFIG
    credentials = asyncio.run(s3["session"].get_credentials())  # an aiobotocore session, as s3fs needs
    assert (credentials.access_key, credentials.secret_key) == (KEYS["login"], KEYS["password"])
    assert s3["session"].get_config_variable("region") == "eu-west-1"


def test_portable_options_hold_the_sessions_keys_and_region_instead_of_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import pickle

    _connection(monkeypatch, "aws_lake", {"endpoint_url": "http://127.0.0.1:9000", "region_name": "eu-west-1"})
    options = storage_options("s3://bucket/root", aws_conn_id="aws_lake")

    shipped = shippable_options(options, uri="s3://bucket/root")

    s3 = shipped["s3"]
    assert "session" not in s3
    assert (s3["key"], s3["secret"], s3["token"]) == (KEYS["login"], KEYS["password"], None)
    assert s3["client_kwargs"] == {"region_name": "eu-west-1"}
    assert (s3["endpoint_url"], s3["config_kwargs"], s3["use_listings_cache"]) == (
        "http://127.0.0.1:9000",
        FAIL_FAST_CONFIG,
        False,
    )
    assert "session" in options["s3"]  # the task's own options are left as they are
    assert pickle.loads(pickle.dumps(shipped)) == shipped  # as Dask's tasks carry them to the workers
    fs, path = filesystem("s3://bucket/root", shipped)
    assert (fs.key, fs.secret, fs.client_kwargs, path) == (
        KEYS["login"],
        KEYS["password"],
        s3["client_kwargs"],
        "bucket/root",
    )
    assert shippable_options({"file": {"auto_mkdir": True}}, uri="/data") == {"file": {"auto_mkdir": True}}
    assert shippable_options(None, uri="/data") == {}


def test_keys_are_resolved_where_an_event_loop_already_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    # A notebook runs one: asyncio.run would refuse to start another.
    _connection(monkeypatch, "aws_lake", {"region_name": "eu-west-1"})
    options = storage_options("s3://bucket/root", aws_conn_id="aws_lake")

    async def in_a_loop() -> dict[str, dict[str, object]]:
        return shippable_options(options, uri="s3://bucket/root")

    shipped = asyncio.run(in_a_loop())

    assert (shipped["s3"]["key"], shipped["s3"]["secret"]) == (KEYS["login"], KEYS["password"])


@pytest.mark.parametrize(
    ("error", "says"),
    [
        (PermissionError("ExpiredToken: The provided token has expired."), "expired"),
        (PermissionError("AccessDenied"), "give the connection's credentials read and write access"),
    ],
)
def test_expired_keys_are_told_apart_from_a_refused_access(error: Exception, says: str) -> None:
    with pytest.raises(StorageUnreachable, match=says) as raised, storage_errors("s3://bucket/root"):
        raise error
    assert "s3://bucket/root" in str(raised.value)


def test_the_connections_own_botocore_settings_win(monkeypatch: pytest.MonkeyPatch) -> None:
    _connection(monkeypatch, "aws_slow", {"config_kwargs": {"connect_timeout": 30}})

    config = storage_options("s3://bucket/root", aws_conn_id="aws_slow")["s3"]["config_kwargs"]

    assert config["connect_timeout"] == 30
    assert config["retries"] == FAIL_FAST_CONFIG["retries"]


def test_the_citys_connection_and_time_column_reach_the_data_tasks(tmp_path: Path) -> None:
    from airflow_ml.factory import build_dag

    (tmp_path / "templates").mkdir()
    (tmp_path / "cities").mkdir()
    shutil.copy(REPO / "dag_templates" / "templates" / "ride_duration.yaml", tmp_path / "templates")
    (tmp_path / "cities" / "porto.yaml").write_text(
        "city: porto\ntemplate: ride_duration\ndataset:\n  format: csv\n  conn_id: aws_porto_lake\n", encoding="utf-8"
    )
    configs, errors = load_city_configs(tmp_path)
    assert errors == []

    dag = build_dag(configs[0], expectations_dir=REPO / "expectations")

    data_tasks = {t.task_id for t in dag.tasks if hasattr(t, "aws_conn_id")}
    assert {"snapshot", "validate", "train", "gate", "approve"} <= data_tasks
    assert {dag.get_task(t).aws_conn_id for t in data_tasks} == {"aws_porto_lake"}
    snapshot = dag.get_task("snapshot")
    assert (snapshot.settings["data_format"], snapshot.settings["time_column"]) == ("csv", "pickup_at")


def test_conn_id_defaults_to_aws_default(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "cities").mkdir()
    shutil.copy(REPO / "dag_templates" / "templates" / "ride_duration.yaml", tmp_path / "templates")
    (tmp_path / "cities" / "porto.yaml").write_text("city: porto\ntemplate: ride_duration\n", encoding="utf-8")

    configs, _ = load_city_configs(tmp_path)

    assert configs[0].dataset.conn_id == "aws_default"
