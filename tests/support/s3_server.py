"""moto's S3 API in server mode on a free loopback port, for tests that talk to S3 through s3fs."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

import pytest


@contextlib.contextmanager
def moto_s3() -> Iterator[str]:
    """Start moto's S3 server and yield its URL; skip the test (fail under AIRFLOW_ML_REQUIRE_SERVICES=1) without it."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    try:
        from moto.server import ThreadedMotoServer

        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
    except Exception as exc:  # noqa: BLE001 - any failure to start means the service is missing
        reason = f"moto's S3 server cannot start on 127.0.0.1 ({exc}); install moto[server]"
        if os.environ.get("AIRFLOW_ML_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{reason}; AIRFLOW_ML_REQUIRE_SERVICES=1 makes a missing service a failure", pytrace=False)
        pytest.skip(reason)
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
