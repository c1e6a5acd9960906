"""Fixtures of the ml tests (helpers live in :mod:`tests.support.training_data`)."""

from __future__ import annotations

import pandas as pd
import pytest
from mlflow import MlflowClient

from tests.support.training_data import late_trips


@pytest.fixture(scope="module")
def trips() -> pd.DataFrame:
    """Eight days of Lisbon's demo trips with the binary label ``late`` (a module may define its own)."""
    return late_trips()


@pytest.fixture
def client(mlflow_store: dict[str, str]) -> MlflowClient:
    """A client of a real MLflow store (SQLite, local artifacts) wired as ``mlflow_default``."""
    return MlflowClient(tracking_uri=mlflow_store["tracking_uri"], registry_uri=mlflow_store["tracking_uri"])
