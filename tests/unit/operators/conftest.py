"""Fixtures of the operators' unit tests: a tiny city's world, and the first tasks of one run of it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.task_runs import OperatorWorld, operator_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorWorld]:
    """One tiny demo city built by the factory, with a real MLflow store (one per test module)."""
    with operator_world(tmp_path_factory.mktemp("world")) as built:
        yield built


@pytest.fixture(scope="module")
def snapshot(world: OperatorWorld) -> dict[str, Any]:
    """The snapshot task's XCom of the world's run."""
    return world.run("snapshot")[0]


@pytest.fixture(scope="module")
def training(world: OperatorWorld, snapshot: dict[str, Any]) -> dict[str, Any]:
    """The train task's XCom of the world's run."""
    return world.run("train", snapshot=snapshot)[0]


@pytest.fixture(scope="module")
def registration(world: OperatorWorld, snapshot: dict[str, Any], training: dict[str, Any]) -> dict[str, Any]:
    """The register task's XCom of the world's run."""
    return world.run("register", snapshot=snapshot, training=training)[0]


@pytest.fixture(scope="module")
def decision(world: OperatorWorld, snapshot: dict[str, Any], registration: dict[str, Any]) -> dict[str, Any]:
    """The gate task's XCom of the world's run: the first model, promoted to champion."""
    return world.run("gate", snapshot=snapshot, registration=registration)[0]
