"""S3 for tests: moto's server, the test keys, the ``aws_default`` connection, a boto3 client of it, and the storage
options a task builds from such a connection (:func:`task_s3_options`, no network)."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.services import service_missing

#: The keys every test's moto server is reached with.
S3_KEYS = {"login": "testing-access-key", "password": "testing-secret-key"}


def aws_connection(endpoint: str) -> str:
    """``AIRFLOW_CONN_AWS_DEFAULT`` for an S3-compatible endpoint (moto) with the test keys."""
    return json.dumps({"conn_type": "aws", **S3_KEYS, "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"}})


def task_s3_options(mp: pytest.MonkeyPatch, uri: str = "s3://lake/root") -> dict[str, Any]:
    """The storage options a task builds for ``uri`` from an ``aws`` connection (the test keys, an endpoint nobody
    answers), as they are once the task has met an error response on S3 (a 404 for a manifest not written yet).

    botocore then looks up the client's exception classes, which the options' aiobotocore session caches; a session
    so used does not survive pickling. The lookup is made here as botocore makes it: no network.
    """
    from airflow_ml.data.storage import filesystem
    from airflow_ml.hooks.storage_credentials import storage_options

    mp.setenv("AIRFLOW_CONN_AWS_TASK", aws_connection("http://127.0.0.1:9"))
    options = storage_options(uri, aws_conn_id="aws_task")
    fs, _ = filesystem(uri, options)
    fs.connect()
    assert fs.s3.exceptions.NoSuchKey is not None
    return options


def s3_client(endpoint: str) -> Any:
    """A boto3 S3 client of an S3-compatible server (moto) with the test keys."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=S3_KEYS["login"],
        aws_secret_access_key=S3_KEYS["password"],
    )


def isolate_aws(mp: pytest.MonkeyPatch, endpoint: str) -> None:
    """Point ``aws_default`` at ``endpoint``; no credential or endpoint of the machine may leak in."""
    mp.setenv("AIRFLOW_CONN_AWS_DEFAULT", aws_connection(endpoint))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        mp.delenv(name, raising=False)
    mp.setenv("AWS_CONFIG_FILE", "/dev/null")
    mp.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")


@contextlib.contextmanager
def moto_endpoint() -> Iterator[str]:
    """moto's S3 in this process on a free loopback port, with ``aws_default`` pointing at it; yields its URL.

    Skips (or fails, under ``AIRFLOW_ML_REQUIRE_SERVICES=1``) when moto's server cannot start.
    """
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    try:
        from moto.server import ThreadedMotoServer

        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
    except Exception as exc:
        service_missing(f"moto's S3 server cannot start on 127.0.0.1 ({exc}); install moto[server]")
        raise  # service_missing skips or fails; this line is never reached
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    with pytest.MonkeyPatch.context() as mp:
        isolate_aws(mp, url)
        try:
            yield url
        finally:
            server.stop()
