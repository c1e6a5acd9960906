"""A service a test needs (PostgreSQL, Redis, a program) that is missing: skip the test, or fail it in CI."""

from __future__ import annotations

import os

import pytest

#: CI sets ``AIRFLOW_ML_REQUIRE_SERVICES=1`` (see ``.ci/run``): there a missing service is a failure.
REQUIRE_SERVICES = os.environ.get("AIRFLOW_ML_REQUIRE_SERVICES") == "1"


def service_missing(reason: str) -> None:
    """Skip a test whose service is missing, or fail it in CI (``AIRFLOW_ML_REQUIRE_SERVICES=1``)."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason}; AIRFLOW_ML_REQUIRE_SERVICES=1 makes a missing service a failure", pytrace=False)
    pytest.skip(reason)
