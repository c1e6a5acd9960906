"""What tests read of Airflow runs made in-process: task states and tries, failed tries' errors, the REST API."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest


def task_states(dag_id: str, run_id: str) -> dict[str, str]:
    """Each task's final state in a run, read from the session's metadata database."""
    return {task_id: str(state) for task_id, state in _task_column(dag_id, run_id, "state").items()}


def try_numbers(dag_id: str, run_id: str) -> dict[str, int]:
    """Each task's try number in a run (1 when the first try was the last)."""
    return {task_id: int(number) for task_id, number in _task_column(dag_id, run_id, "try_number").items()}


def _task_column(dag_id: str, run_id: str, column: str) -> dict[str, Any]:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(TaskInstance.task_id, getattr(TaskInstance, column)).where(
                TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id
            )
        ).all()
    return dict(rows)


def capture(dag: Any, task_id: str, kind: str, sink: list[str], then: Callable[[], None] | None = None) -> None:
    """Record the exception of each failed try of ``task_id`` in ``sink`` (``kind``: on_retry/on_failure).

    ``then`` runs after recording (e.g. to bring a server back once the failed try is recorded).
    """

    def callback(context: Any) -> None:
        sink.append(f"{type(context.get('exception')).__name__}: {context.get('exception')}")
        if then is not None:
            then()

    setattr(dag.get_task(task_id), f"{kind}_callback", [callback])


@contextlib.contextmanager
def airflow_api(*, plugins_folder: Path | None = None) -> Iterator[Any]:
    """Airflow's own REST API (its FastAPI app) in-process, every request an admin's.

    Authentication is not what the tests that use it are about; the metadata database is the session's.
    ``plugins_folder`` (e.g. the repo's ``plugins/``) is loaded as Airflow's plugins folder.
    """
    from airflow import plugins_manager, settings
    from airflow.api_fastapi.app import create_app, purge_cached_app
    from fastapi.testclient import TestClient

    def clear_plugin_caches() -> None:
        for value in vars(plugins_manager).values():
            if callable(getattr(value, "cache_clear", None)):
                value.cache_clear()

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "True")
        mp.setenv("AIRFLOW__API_AUTH__JWT_SECRET", "airflow-ml-tests-" + "x" * 64)
        if plugins_folder is not None:
            mp.setattr(settings, "PLUGINS_FOLDER", str(plugins_folder))
        clear_plugin_caches()
        purge_cached_app()
        try:
            yield TestClient(create_app())
        finally:
            purge_cached_app()
            clear_plugin_caches()


def mapped_task_states(dag_id: str, run_id: str, task_id: str) -> dict[str, str]:
    """Each mapped instance's final state in a run, by its rendered map index (e.g. the city it ran for)."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(TaskInstance.rendered_map_index, TaskInstance.map_index, TaskInstance.state).where(
                TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id, TaskInstance.task_id == task_id
            )
        ).all()
    return {str(rendered if rendered is not None else index): str(state) for rendered, index, state in rows}


def asset_events(uri: str) -> list[dict[str, Any]]:
    """The events of the Asset ``uri``, oldest first, read from the session's metadata database."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(
            select(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.uri == uri)
            .order_by(AssetEvent.id)
        ).all()
        return [{"extra": dict(e.extra or {}), "dag_id": e.source_dag_id, "run_id": e.source_run_id} for e in rows]
