"""Unit tests of a snapshot as an MLflow dataset input, from its manifest (airflow_ml.ml.snapshot_dataset)."""

from __future__ import annotations

import json

import pytest

from airflow_ml.data.snapshot import Manifest
from airflow_ml.ml.snapshot_dataset import DIGEST_LENGTH, snapshot_input


def manifest(**changes: object) -> Manifest:
    fields: dict = {
        "city": "lisbon", "run_id": "r1", "uri": "/data/snapshots/t/lisbon/r1", "source": "/data/raw/lisbon",
        "row_count": 1200, "columns": {"a": "float64", "b": "int64"}, "content_hash": "ab" * 32,
        "partitions": ["2026-01-01"], "created_at": "2026-01-02T00:00:00+00:00", "template": "t",
    }  # fmt: skip
    return Manifest(**{**fields, **changes})


@pytest.mark.parametrize(
    ("changes", "scheme", "parts"),
    [
        ({}, "rows-sha256", None),
        (
            {"kind": "partitioned", "hash_scheme": "parts-sha256", "parts": [{"file": "data/part.00000.parquet"}] * 3},
            "parts-sha256",
            3,
        ),
    ],
)
def test_the_input_profile_names_the_hash_and_its_scheme(changes: dict, scheme: str, parts: int | None) -> None:
    found = snapshot_input(manifest(**changes), "validation")

    profile = json.loads(found.dataset.profile)
    assert profile["content_hash"] == "ab" * 32
    assert found.dataset.digest == ("ab" * 32)[:DIGEST_LENGTH]
    assert profile["num_rows"] == 1200
    assert profile["hash_scheme"] == scheme
    assert profile.get("num_parts") == parts
