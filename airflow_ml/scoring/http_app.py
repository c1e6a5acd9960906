"""The fleet's HTTP server: one FastAPI application that serves every city's champion and logs each request.

Routes:

- ``POST /v1/models/<template>/<city>:predict`` with ``{"rows": [{column: value, ...}, ...]}`` answers
  ``{"model_name", "model_version", "source", "predictions", "prediction_ids", "logged"}``;
- ``GET /v1/models``: every known city and what serves it; ``GET /v1/health``: the cache and the counters.

What serves a city is its own champion, else its fallback parent's (:func:`airflow_ml.ml.fallback.which_model_serves`),
unless the kill switch disables it; that answer is read from the registry at most once per ``alias_ttl`` seconds
(:class:`~airflow_ml.scoring.http_fleet.RouteTable`), and models stay loaded in the :class:`ModelCache`, so that a
request with a fresh answer and a loaded model makes no registry call.

Each request's rows go to the city's prediction log, with the prediction ids the batch run gives the same rows,
through a buffer (:class:`~airflow_ml.scoring.request_buffer.RequestBuffer`) that writes one
``requests-<id>.parquet`` per city and day every ``log_flush_rows`` rows or ``log_flush_seconds`` seconds, and at
shutdown; a flush that fails keeps its rows for the next try. When a request's rows cannot join the log (the
buffer is full, or the rows cannot be logged), ``on_log_failure`` decides: ``refuse`` (the default) answers 503
and serves nothing, so that every prediction served is in the log the monitor reads (or its buffer); ``serve``
answers the predictions with ``"logged": false``, logs the error and counts it in ``/v1/health``.

Errors: 404 for an unknown template or city (naming the known ones), 413 for too many rows or too large a body
(checked on its ``Content-Length`` before it is read; 411 without one), 422 for rows that do
not fit the model's signature (naming the column), 503 when nothing serves the city (why), it is disabled, or the
registry, the model or the log cannot be used now. A 503 of the last kind says why in one public sentence and
names a request id; the error's details (a registry URI, a path, a library's message) go to the server's log
under that id, never to the client.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import threading
import uuid
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any, Literal

from fastapi import FastAPI, HTTPException

from airflow_ml.scoring.http_fleet import RouteTable, ServedCity, bounded
from airflow_ml.scoring.http_schemas import (
    MAX_ROWS,
    PredictRequest,
    PredictResponse,
    RowsRefused,
    declared_types,
    model_columns,
    rows_frame,
)
from airflow_ml.scoring.request_buffer import (
    DEFAULT_FLUSH_ROWS,
    DEFAULT_FLUSH_SECONDS,
    DEFAULT_MAX_ROWS,
    BufferFull,
    RequestBuffer,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from airflow_ml.ml.model_cache import ModelCache

log = logging.getLogger(__name__)

OnLogFailure = Literal["refuse", "serve"]
#: The largest request body per row allowed (bytes): a row of a few dozen columns takes well under 1 KiB of JSON.
BODY_BYTES_PER_ROW = 4096


class BodyLimit:
    """ASGI middleware: refuse a POST body larger than ``limit`` bytes, or of unknown length, before it is read.

    FastAPI parses a whole body before any check of its rows, so a 1 GB body or one row with ten million keys
    would be held in memory first; the declared ``Content-Length`` is checked instead (every HTTP client sends
    it for a JSON body), and a body longer than it declared is cut off by the server (h11 refuses it).
    """

    def __init__(self, app: Any, *, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            declared = dict(scope["headers"]).get(b"content-length")
            if declared is None or not declared.isdigit():
                await _refuse(send, 411, "send the body with a Content-Length header")
                return
            if int(declared) > self.limit:
                await _refuse(
                    send, 413, f"a body of {int(declared)} bytes: at most {self.limit}; split the rows into batches"
                )
                return
        await self.app(scope, receive, send)


async def _refuse(send: Any, status: int, message: str) -> None:
    import json

    body = json.dumps({"detail": {"message": message}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _Counters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.values = {"requests": 0, "rows": 0, "log_failures": 0}

    def add(self, **amounts: int) -> None:
        with self._lock:
            for name, amount in amounts.items():
                self.values[name] += amount


def create_app(
    fleet: Iterable[ServedCity],
    cache: ModelCache,
    *,
    client: MlflowClient,
    alias_ttl: float,
    max_rows: int = MAX_ROWS,
    on_log_failure: OnLogFailure = "refuse",
    log_flush_rows: int = DEFAULT_FLUSH_ROWS,
    log_flush_seconds: float = DEFAULT_FLUSH_SECONDS,
    log_buffer_rows: int = DEFAULT_MAX_ROWS,
) -> FastAPI:
    """The application serving ``fleet``.

    Args:
        fleet: The cities known from the YAML.
        cache: The loaded models, bounded (its ``max_models``).
        client: The registry (what serves each city, the kill switch).
        alias_ttl: Seconds a city's answer (champion, parent, kill switch) is trusted before it is read again.
        max_rows: The most rows one request may carry (413 above); a body may hold
            :data:`BODY_BYTES_PER_ROW` bytes per row allowed (413 above, before it is read).
        on_log_failure: ``refuse`` (503 when a request's rows cannot join the prediction log: its buffer is
            full, or the rows cannot be logged) or ``serve`` (answer anyway, with ``"logged": false``, an error
            log line and a counter).
        log_flush_rows: A city and day's buffered rows are written as one file once this many wait
            (:class:`~airflow_ml.scoring.request_buffer.RequestBuffer`).
        log_flush_seconds: ...or once the oldest waits this long; and at shutdown.
        log_buffer_rows: The most rows the buffer holds, all cities together.
    """
    if max_rows < 1:
        raise ValueError(f"max_rows={max_rows}: at least 1")
    cities = {city.path: city for city in fleet}
    templates = {city.template for city in cities.values()}
    routes = RouteTable(client, ttl=alias_ttl)
    counters = _Counters()
    buffer = RequestBuffer(flush_rows=log_flush_rows, flush_seconds=log_flush_seconds, max_rows=log_buffer_rows)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        buffer.start()
        try:
            yield
        finally:
            buffer.stop()  # the rows still buffered are written before the process ends

    app = FastAPI(title="airflow-ml serving", version="1", lifespan=lifespan)
    app.add_middleware(BodyLimit, limit=BODY_BYTES_PER_ROW * max_rows)

    def known_city(template: str, city: str) -> ServedCity:
        found = cities.get(f"{template}/{city}")
        if found is not None:
            return found
        if template not in templates:
            message = f"no template {template!r}; known templates: {bounded(templates)}"
        else:
            names = [c.city for c in cities.values() if c.template == template]
            message = f"no city {city!r} in template {template!r}; known cities: {bounded(names)}"
        raise HTTPException(404, {"message": message})

    @app.get("/v1/health")
    def health() -> dict[str, Any]:
        stats = cache.stats()
        return {
            "status": "ok",
            "cities": len(cities),
            "models_loaded": [f"{name}/{version}" for name, version in cache.cached()],
            "cache": {"hits": stats.hits, "loads": stats.loads, "evictions": stats.evictions},
            "registry_reads": routes.reads,
            "log_buffer": dict(buffer.stats),
            **counters.values,
        }

    def listed(city: ServedCity) -> dict[str, Any]:
        try:
            route = routes.route(city).to_dict()
        except Exception as exc:  # noqa: BLE001 - one city's registry error is shown on its entry only
            request_id = _logged_error(f"cannot read the registry for {city.model_name}", exc)
            route = {
                "model_name": None,
                "version": None,
                "source": "unknown",
                "reason": f"cannot read the registry now; retry later (request id {request_id}: the server's log "
                "has the details)",
                "disabled": None,
            }
        return {"template": city.template, "city": city.city, "model_name": city.model_name, **route}

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {"models": [listed(c) for c in sorted(cities.values(), key=lambda c: c.path)]}

    @app.post("/v1/models/{template}/{city}:predict", response_model=PredictResponse)
    def predict(template: str, city: str, body: PredictRequest) -> PredictResponse:
        served = known_city(template, city)
        if len(body.rows) > max_rows:
            raise HTTPException(
                413, {"message": f"{len(body.rows)} rows: at most {max_rows} per request; split them into batches"}
            )
        try:
            route = routes.route(served)
        except Exception as exc:  # an unreachable registry: the client may retry, 503 rather than 500
            raise _unavailable(
                f"the model registry cannot be read for {served.path} now; retry in a moment (if it lasts, the "
                "server's operator checks the registry connection)",
                exc,
                source="unknown",
            ) from exc
        if route.model_name is None or route.version is None:
            disabled = route.disabled.to_dict() if route.disabled else None
            raise HTTPException(503, {"message": route.reason, "source": route.source, "disabled": disabled})
        try:
            model = cache.get(route.model_name, route.version)
        except Exception as exc:  # a version deleted since, an unreachable store: say so, 503
            routes.forget(served)
            raise _unavailable(
                f"{route.model_name} v{route.version}, which serves {served.path}, cannot be loaded now; retry in a "
                "moment (if it lasts, the server's operator checks that version's artifacts in the registry)",
                exc,
                source=route.source,
            ) from exc
        schema = model.metadata.get_input_schema()
        try:
            frame = rows_frame(body.rows, schema, served.features)
            frame = declared_types(frame, served.column_kinds, (*served.key_columns, *served.keep_columns))
            columns, ids = _ids(served, frame)
            predictions = _predict(model, frame[model_columns(schema, served.features)])
        except RowsRefused as exc:
            raise HTTPException(422, {"message": str(exc), "column": exc.column}) from exc
        logged = _log(served, route, frame, predictions, columns, ids, on_log_failure, counters, buffer)
        counters.add(requests=1, rows=len(frame))
        return PredictResponse(
            model_name=route.model_name,
            model_version=route.version,
            source=route.source,
            predictions=predictions,
            prediction_ids=ids,
            logged=logged,
        )

    return app


def _predict(model: Any, rows: Any) -> list[float | None]:
    """The pyfunc's predictions as JSON numbers; what MLflow's schema check refuses is a 422."""
    import numpy as np
    from mlflow.exceptions import MlflowException

    try:
        values = np.asarray(model.predict(rows), dtype="float64")
    except MlflowException as exc:
        raise RowsRefused(f"the model refused the rows: {exc.message}") from exc
    return [None if not np.isfinite(v) else float(v) for v in values.tolist()]


def _ids(city: ServedCity, frame: Any) -> tuple[Any, list[str]]:
    """The log's columns and the rows' prediction ids, as the batch run makes them for the same rows."""
    from airflow_ml.data.prediction_ids import prediction_ids
    from airflow_ml.data.prediction_log import LogColumns
    from airflow_ml.exceptions import DataError

    missing = [c for c in city.key_columns if c not in frame.columns]
    if missing:
        raise RowsRefused(
            f"the rows have no key column {missing[0]!r}; the city's scoring.key_columns {list(city.key_columns)} "
            "make each row's prediction id: send them in each row",
            missing[0],
        )
    columns = LogColumns(
        key=city.key_columns,
        content=() if city.key_columns else city.features,
        keep=tuple(c for c in city.keep_columns if c in frame.columns and c not in city.key_columns),
    )
    try:
        ids = prediction_ids(frame, columns.key or columns.content, namespace=f"{city.template}/{city.city}")
    except DataError as exc:
        raise RowsRefused(str(exc)) from exc
    first: dict[str, int] = {}
    for row, pid in enumerate(ids):
        if first.setdefault(pid, row) != row:
            what = f"the same key {list(city.key_columns)}" if city.key_columns else "the same features"
            raise RowsRefused(
                f"rows {first[pid]} and {row} have {what}, so one prediction id; a prediction id names one row: "
                "send each row once"
            )
    return columns, ids


def _log(
    city: ServedCity,
    route: Any,
    frame: Any,
    predictions: list[float | None],
    columns: Any,
    ids: list[str],
    on_log_failure: OnLogFailure,
    counters: _Counters,
    buffer: RequestBuffer,
) -> bool:
    """Add the request's rows to the city's buffered prediction log; whether they were (see ``on_log_failure``)."""
    from airflow_ml.data.prediction_log import ScoringContext, log_frame
    from airflow_ml.exceptions import DataError

    now = dt.datetime.now(dt.UTC)
    context = ScoringContext(
        template=city.template,
        city=city.city,
        model_name=str(route.model_name),
        model_version=str(route.version),
        scoring_run_id=f"http-{uuid.uuid4().hex}",
        input_hash=hashlib.sha256("".join(ids).encode()).hexdigest(),
        scored_at=now,
    )
    try:
        buffer.add(city, now.date(), log_frame(frame, predictions, context, columns))
    except (DataError, BufferFull) as exc:
        return _log_failed(city, exc, on_log_failure, counters)
    return True


def _log_failed(city: ServedCity, exc: Exception, on_log_failure: OnLogFailure, counters: _Counters) -> bool:
    counters.add(log_failures=1)
    full = isinstance(exc, BufferFull)
    what = f"cannot log the rows of {city.path} under {city.output_root}"
    if on_log_failure == "serve":
        _logged_error(what, exc)
        return False
    why = f"its buffer is full ({exc})" if full else "the rows cannot be logged"  # the server's own figures
    raise _unavailable(
        f"the prediction log of {city.path} cannot take the rows now: {why}; nothing was served, so that every "
        "prediction served is logged. The server's operator fixes the log's root (scoring.output), or starts the "
        "server with --on-log-failure serve",
        exc,
        what=what,
    )


def _logged_error(what: str, exc: BaseException) -> str:
    """Log ``what`` and ``exc`` (with its traceback) under a new request id; the id, for the answer to name."""
    request_id = uuid.uuid4().hex[:16]
    log.error("request %s: %s: %s", request_id, what, exc, exc_info=exc)
    return request_id


def _unavailable(message: str, exc: BaseException, *, what: str | None = None, **fields: Any) -> HTTPException:
    """A 503 whose body says why in public terms; the error's details go to the server's log under its request id.

    An exception's text may hold a registry URI with a password, a path or a stack of library messages: none of
    it reaches the client, who gets the request id to quote instead.
    """
    request_id = _logged_error(what or message, exc)
    return HTTPException(
        503,
        {
            "message": f"{message} (request id {request_id}: the server's log has the details)",
            "request_id": request_id,
            **fields,
        },
    )
