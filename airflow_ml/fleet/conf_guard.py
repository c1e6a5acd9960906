"""Refuse a bad conf when a run of an airflow-ml DAG is created through Airflow's REST API or its UI.

Airflow checks each Param of a conf against its JSON Schema when it creates a run, but keeps a key that is no
Param (``num_boost_rounds`` trains the configured rounds), cannot compare two Params (``force`` without a
``reason``) and takes ``60.0`` for an integer (Draft 7). :class:`RunConfGuard`, installed by the
``airflow_ml_run_conf`` plugin as a root middleware of the api-server, reads the body of
``POST /api/v2/dags/{dag_id}/dagRuns`` (the UI's *Trigger* too) and ``POST /api/v2/backfills`` for the DAGs
tagged ``airflow-ml`` and answers 400 with every problem (the unknown key and the closest Param, each value the
run's tasks would refuse) before Airflow creates anything. It answers only a caller whom Airflow would let
create the run; anyone else gets Airflow's own 401 or 403, so a refusal never tells a stranger a DAG's Params.

Airflow's api-server modules are imported inside the functions: plugins are loaded by every Airflow process.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from airflow_ml.operators.overrides import conf_problems, param_defaults, refusal

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger(__name__)

#: The tag of every DAG the factory builds (city DAGs, fallback parents, the rollback DAG).
TAG = "airflow-ml"
_TRIGGER = re.compile(r"/api/v2/dags/(?P<dag_id>[^/]+)/dagRuns/?$")
_BACKFILL = re.compile(r"/api/v2/backfills/?$")


class RunConfGuard:
    """A pure ASGI middleware: every request but a run's creation passes through untouched.

    Args:
        app: The api-server's app (Starlette passes it).
    """

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        trigger, backfill = _TRIGGER.search(path), _BACKFILL.search(path)
        if not trigger and not backfill:
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        replay = _replaying(body, receive)
        detail = None
        try:
            request = _json(body)
            if trigger:
                detail = await _refusal(scope, replay, trigger["dag_id"], request.get("conf"))
            elif isinstance(request.get("dag_id"), str):
                detail = await _refusal(scope, replay, request["dag_id"], request.get("dag_run_conf"))
        except Exception:  # never break the API: the run's first task checks the conf again
            log.warning(
                "airflow-ml: could not check the conf of POST %s; the run's first task will", path, exc_info=True
            )
            detail = None
        if detail is None:
            await self.app(scope, replay, send)
            return
        from starlette.responses import JSONResponse

        await JSONResponse({"detail": detail}, status_code=400)(scope, replay, send)


async def _refusal(scope: Scope, receive: Receive, dag_id: str, conf: Any) -> str | None:
    """The 400 detail for ``conf``, or None to let Airflow answer (a good conf, another DAG, an unknown caller)."""
    from starlette.concurrency import run_in_threadpool

    if not isinstance(conf, dict) or not conf:
        return None
    params = await run_in_threadpool(_dag_params, scope, dag_id)
    if params is None:
        return None
    problems = conf_problems(conf, params)
    if not problems or not await _may_trigger(scope, receive, dag_id):
        return None
    return refusal(dag_id, problems)


def _dag_params(scope: Scope, dag_id: str) -> dict[str, Any] | None:
    """The Params (name to default) of ``dag_id``'s latest version if it is an airflow-ml DAG, else None."""
    from airflow.utils.session import create_session

    with create_session() as session:
        dag = scope["app"].state.dag_bag.get_latest_version_of_dag(dag_id, session=session)
    if dag is None or TAG not in (dag.tags or ()):
        return None
    return param_defaults(dag.params)


async def _may_trigger(scope: Scope, receive: Receive, dag_id: str) -> bool:
    """Whether Airflow would let this request's user create a run of ``dag_id`` (as its own endpoint checks)."""
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
    from airflow.api_fastapi.core_api.security import get_user, requires_access_dag
    from fastapi import HTTPException
    from fastapi.security import HTTPBearer
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request

    request = Request(scope, receive)
    try:
        bearer = await HTTPBearer(auto_error=False)(request)
        user = await get_user(request, _oauth_token=None, bearer_credentials=bearer)
        check = requires_access_dag(method="POST", access_entity=DagAccessEntity.RUN, param_dag_id=dag_id)
        await run_in_threadpool(check, request, user)
    except HTTPException:
        return False
    return True


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the body read here to the app, then waits on the client as before."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _json(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError:
        return {}  # Airflow answers 422
    return data if isinstance(data, dict) else {}
