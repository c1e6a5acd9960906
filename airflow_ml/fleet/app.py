"""The fleet view's FastAPI app, mounted by the ``airflow_ml_fleet`` plugin under ``/airflow-ml``.

Routes (behind Airflow's own authentication: a ``Authorization: Bearer <JWT>`` header from
``POST /auth/token``, or the ``_token`` cookie the Airflow UI sets at login):

- ``GET /airflow-ml/fleet``: the HTML table (an unauthenticated browser is sent to Airflow's login);
- ``GET /airflow-ml/api/fleet``: the same rows as JSON (401 or 403 without a valid token).

Only the DAGs the user may read (the auth manager's ``get_authorized_dag_ids``) are shown. Airflow's
api-server modules are imported inside the functions: plugins are loaded by every Airflow process,
and only the api-server serves this app.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from airflow_ml.fleet import html
from airflow_ml.fleet.model_states import ModelState, read_models
from airflow_ml.fleet.rows import build_rows
from airflow_ml.fleet.summary import summarize
from airflow_ml.fleet.trends import Trend, complete_versions, list_versions, trends_of

if TYPE_CHECKING:
    from airflow.api_fastapi.auth.managers.models.base_user import BaseUser

URL_PREFIX = "/airflow-ml"
HTML_PATH = "/fleet"
JSON_PATH = "/api/fleet"
DEFAULT_MLFLOW_CONN_ID = "mlflow_default"

_bearer = HTTPBearer(auto_error=False)


async def _user(request: Request, bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> BaseUser:
    """The Airflow user of the request, as Airflow's own API authenticates it (bearer first, then cookie)."""
    from airflow.api_fastapi.core_api.security import get_user

    return await get_user(request, _oauth_token=None, bearer_credentials=bearer)


async def _user_or_none(
    request: Request, bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> BaseUser | None:
    """Like :func:`_user`, but None instead of 401/403, so that a browser can be sent to the login page."""
    try:
        return await _user(request, bearer)
    except HTTPException as exc:
        if exc.status_code in (401, 403):
            return None
        raise


#: The page may be framed only by its own origin (Airflow's UI embeds it in a same-origin iframe), not by another
#: site's page that would show it to a logged-in user.
FRAMING = {"Content-Security-Policy": "frame-ancestors 'self'"}


def create_app(*, mlflow_conn_id: str = DEFAULT_MLFLOW_CONN_ID) -> FastAPI:
    """The fleet view's app.

    Args:
        mlflow_conn_id: The Airflow connection (type ``mlflow``) of the registry to read.
    """
    app = FastAPI(title="airflow-ml fleet", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get(JSON_PATH)
    def fleet_json(user: Annotated[Any, Depends(_user)]) -> JSONResponse:
        """The fleet's rows (one per city DAG the user may read) as JSON."""
        return JSONResponse(collect_fleet(user, mlflow_conn_id=mlflow_conn_id))

    @app.get(HTML_PATH, response_class=HTMLResponse, response_model=None)
    def fleet_html(request: Request, user: Annotated[Any, Depends(_user_or_none)]) -> HTMLResponse | RedirectResponse:
        """The fleet as an HTML table; without a valid login, a redirect to Airflow's login page."""
        if user is None:
            from airflow.api_fastapi.app import get_auth_manager

            return RedirectResponse(get_auth_manager().get_url_login(next_url=str(request.url)), status_code=307)
        fleet = collect_fleet(user, mlflow_conn_id=mlflow_conn_id)
        page = html.render(
            fleet["rows"], generated_at=fleet["generated_at"], user=user.get_name(), summary=fleet["summary"]
        )
        return HTMLResponse(page, headers=FRAMING)

    @app.get("/", include_in_schema=False)
    def index(request: Request) -> RedirectResponse:
        return RedirectResponse(str(request.url_for("fleet_html")), status_code=307)

    return app


def collect_fleet(user: BaseUser, *, mlflow_conn_id: str = DEFAULT_MLFLOW_CONN_ID) -> dict[str, Any]:
    """Everything the fleet view shows to ``user``: the metadata database's facts, then the registry's.

    Returns:
        ``generated_at`` (ISO time), ``mlflow_ui`` (the MLflow UI's base URL or None), ``rows`` (see
        :func:`airflow_ml.fleet.rows.build_rows`) and ``summary`` (the counts of
        :func:`airflow_ml.fleet.summary.summarize`).
    """
    from airflow.api_fastapi.app import API_ROOT_PATH, get_auth_manager
    from airflow.utils.session import create_session

    from airflow_ml.fleet.metadata import city_dags, drift_verdicts, last_runs, pending_approvals

    with create_session() as session:
        readable = get_auth_manager().get_authorized_dag_ids(user=user, method="GET", session=session)
        dags = city_dags(session, readable)
        dag_ids = [dag.dag_id for dag in dags]
        runs = last_runs(session, dag_ids)
        drifts = drift_verdicts(session, dag_ids)
        approvals = pending_approvals(session, dag_ids)
    # The registry is read after the database session is closed: a slow store holds no connection.
    models, trends, mlflow_ui = _registry([dag.model_name for dag in dags], mlflow_conn_id)
    now = dt.datetime.now(dt.UTC)
    rows = build_rows(
        dags, runs, drifts, models, trends=trends, approvals=approvals, ui_root=API_ROOT_PATH, mlflow_ui=mlflow_ui
    )
    return {
        "generated_at": now.isoformat(timespec="seconds"),
        "mlflow_ui": mlflow_ui,
        "rows": rows,
        "summary": summarize(rows, now=now),
    }


def _registry(model_names: list[str], conn_id: str) -> tuple[dict[str, ModelState], dict[str, Trend], str | None]:
    """The registry state and trend of each model and the MLflow UI's base URL; a connection problem goes on
    every row."""
    from airflow_ml.fleet.model_states import short_error
    from airflow_ml.hooks.mlflow import MlflowHook
    from airflow_ml.links.mlflow_links import ui_base

    if not model_names:
        return {}, {}, None
    try:
        hook = MlflowHook(mlflow_conn_id=conn_id)
        client = hook.get_conn()
        base = ui_base(hook.tracking_uri)
    except Exception as exc:  # noqa: BLE001 - a missing or broken connection is shown, not raised
        error = f"registry unreachable: connection {conn_id!r}: {short_error(exc)}"
        return {name: ModelState(name, error=error) for name in model_names}, {}, None
    # One version search per template serves both the trends and the models' kept champions and last decisions.
    versions, errors = list_versions(client, model_names)
    models = read_models(client, model_names, versions=versions)
    # A registered model whose newest versions were not all among its template's newest: behind the others.
    complete_versions(client, versions, [n for n, m in models.items() if m.registered])
    return models, trends_of(model_names, versions, errors), base
