"""The HTTP server's prediction log: each request's rows buffered per city and day, written one file per flush.

One file per request would make ~7 million tiny files a day at 80 requests a second, each of which the monitor's
:func:`~airflow_ml.data.prediction_log.read_predictions` lists and opens. Instead each request's rows (already
the log's rows, :func:`~airflow_ml.data.prediction_log.log_frame`) join the buffer of their city and day, and a
flush writes them as one ``requests-<id>.parquet`` (atomically, as every log file): when the buffer of a city and
day holds ``flush_rows`` rows, when its oldest rows are ``flush_seconds`` old (a background thread looks), and at
shutdown (the application's lifespan).

Rows are never dropped silently. A flush that fails is logged with its error, and its rows go back to the
buffer for the next try (after ``flush_seconds``); the buffer is bounded (``max_rows``), and a request whose
rows do not fit is told why (:class:`BufferFull`: the server answers 503, or with ``"logged": false`` under
``--on-log-failure serve``). Rows still buffered when the process is killed outright (``SIGKILL``, a crash) are
lost: at most ``flush_seconds`` of requests, or ``flush_rows`` rows per city.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_ml.exceptions import AirflowMLError

if TYPE_CHECKING:
    import pandas as pd

    from airflow_ml.scoring.http_fleet import ServedCity

log = logging.getLogger(__name__)

#: ``airflow-ml serve``'s defaults: a flush per city and day at 5,000 rows or 10 s, at most 100,000 rows held.
DEFAULT_FLUSH_ROWS = 5_000
DEFAULT_FLUSH_SECONDS = 10.0
DEFAULT_MAX_ROWS = 100_000
#: How often (seconds, at most) the background thread looks for buffers old enough to flush.
TICK = 1.0
#: Tries of the last flush at shutdown, a second apart, before the rows left are reported lost.
SHUTDOWN_TRIES = 3

#: Writes one flush: ``writer(root, template, city, day, frames, batch_id=..., storage_options=...)``.
Writer = Callable[..., Any]


class BufferFull(AirflowMLError):
    """The buffer cannot take a request's rows: it holds ``max_rows`` rows that could not be written yet."""


@dataclass
class _Pending:
    """One city's rows of one day, waiting for their flush."""

    city: ServedCity
    day: dt.date
    since: float
    frames: list[pd.DataFrame] = field(default_factory=list)
    rows: int = 0
    retry_at: float = 0.0  # after a failed flush, this city and day is not tried again before this time


class RequestBuffer:
    """The buffered prediction log of every city the server serves (thread-safe).

    Args:
        flush_rows: A city and day's rows written as soon as they reach this many (at least 1).
        flush_seconds: The longest rows wait before their flush; also the pause before a failed flush is
            tried again (above 0).
        max_rows: The most rows held, all cities together (at least ``flush_rows``); above it, or above a tenth
            of it (at least two flushes) for one city and day, :meth:`add` refuses.
        writer: How one flush is written (default
            :func:`~airflow_ml.data.prediction_log.write_request_batch`).
        clock: Monotonic seconds (default :func:`time.monotonic`).
    """

    def __init__(
        self,
        *,
        flush_rows: int = DEFAULT_FLUSH_ROWS,
        flush_seconds: float = DEFAULT_FLUSH_SECONDS,
        max_rows: int = DEFAULT_MAX_ROWS,
        writer: Writer | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if flush_rows < 1 or flush_seconds <= 0 or max_rows < flush_rows:
            raise ValueError(
                f"flush_rows={flush_rows}, flush_seconds={flush_seconds}, max_rows={max_rows}: flush at 1 row or "
                "more, after more than 0 s, and hold at least flush_rows rows"
            )
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self.max_rows = max_rows
        #: The most rows one city and day may hold: one broken log never takes the buffer of the others.
        self.city_rows = min(max_rows, max(2 * flush_rows, max_rows // 10))
        self._writer = writer
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, dt.date], _Pending] = {}
        self._held = 0  # rows buffered or being written, all cities
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.stats = {"buffered_rows": 0, "flushes": 0, "flushed_rows": 0, "flush_failures": 0, "lost_rows": 0}

    def add(self, city: ServedCity, day: dt.date, rows: pd.DataFrame) -> None:
        """Buffer a request's logged rows for ``city`` and ``day``; flush them at once when enough are waiting.

        Raises:
            BufferFull: when the rows do not fit, naming how many rows are held and why.
        """
        now = self._clock()
        with self._lock:
            if self._held + len(rows) > self.max_rows:
                raise BufferFull(
                    f"the prediction log's buffer holds {self._held} rows, its bound (--log-buffer-rows "
                    f"{self.max_rows}), because the log could not be written fast enough or at all"
                )
            waiting = self._pending.get((city.path, day))
            if waiting is not None and waiting.rows + len(rows) > self.city_rows:
                raise BufferFull(
                    f"the prediction log's buffer holds {waiting.rows} rows of {city.path} for {day}, the most one "
                    f"city and day may hold ({self.city_rows}: a tenth of --log-buffer-rows, or two flushes, so that "
                    "a city whose log cannot be written never fills the buffer of the others), because its log could "
                    "not be written"
                )
            pending = self._pending.setdefault((city.path, day), _Pending(city, day, now))
            pending.frames.append(rows)
            pending.rows += len(rows)
            self._held += len(rows)
            self.stats["buffered_rows"] = self._held
            due = pending.rows >= self.flush_rows and now >= pending.retry_at
        if due:
            self.flush(city.path, day)

    def flush_due(self) -> None:
        """Flush every city and day whose rows are ``flush_seconds`` old or ``flush_rows`` many."""
        now = self._clock()
        with self._lock:
            due = [
                key
                for key, pending in self._pending.items()
                if now >= pending.retry_at
                and (pending.rows >= self.flush_rows or now - pending.since >= self.flush_seconds)
            ]
        for path, day in due:
            self.flush(path, day)

    def flush_all(self) -> bool:
        """Flush every buffer now, whatever its age; whether all were written."""
        with self._lock:
            keys = list(self._pending)
        return all([self.flush(path, day) for path, day in keys])

    def flush(self, path: str, day: dt.date) -> bool:
        """Write the rows of ``path`` (``<template>/<city>``) and ``day`` as one file; whether they were written.

        A failure is logged, and the rows go back to the buffer, before any that arrived meanwhile.
        """
        with self._lock:
            pending = self._pending.pop((path, day), None)
        if pending is None:
            return True
        city = pending.city
        try:
            self._write(pending)
        except Exception as exc:
            with self._lock:
                newer = self._pending.get((path, day))
                if newer is not None:
                    pending.frames += newer.frames
                    pending.rows += newer.rows
                pending.retry_at = self._clock() + self.flush_seconds
                self._pending[(path, day)] = pending
                self.stats["flush_failures"] += 1
            log.error(
                "cannot write %d buffered row(s) of %s's prediction log for %s under %s (kept for the next try in "
                "%g s; %d rows held in all): %s",
                pending.rows,
                city.path,
                day,
                city.output_root,
                self.flush_seconds,
                self._held,
                exc,
                exc_info=exc,
            )
            return False
        with self._lock:
            self._held -= pending.rows
            self.stats.update(
                buffered_rows=self._held,
                flushes=self.stats["flushes"] + 1,
                flushed_rows=self.stats["flushed_rows"] + pending.rows,
            )
        return True

    def _write(self, pending: _Pending) -> None:
        from airflow_ml.data.prediction_log import write_request_batch

        city = pending.city
        (self._writer or write_request_batch)(
            city.output_root,
            city.template,
            city.city,
            pending.day,
            pending.frames,
            batch_id=f"http-flush-{uuid.uuid4().hex}",
            storage_options=dict(city.storage_options) if city.storage_options else None,
        )

    def start(self) -> None:
        """Start the thread that flushes buffers once they are ``flush_seconds`` old."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="airflow-ml-log-flush", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and flush what is left (tried :data:`SHUTDOWN_TRIES` times); report any rows lost."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        for attempt in range(SHUTDOWN_TRIES):
            if self.flush_all():
                return
            if attempt + 1 < SHUTDOWN_TRIES:
                time.sleep(1.0)
        with self._lock:
            lost, self._held = self._held, 0
            self._pending.clear()
            self.stats.update(buffered_rows=0, lost_rows=self.stats["lost_rows"] + lost)
        log.error(
            "%d row(s) of the prediction log could not be written before the server stopped (the errors above say "
            "why): those predictions were served but are not in the log",
            lost,
        )

    def _run(self) -> None:
        while not self._stop.wait(min(TICK, self.flush_seconds / 2)):
            try:
                self.flush_due()
            except Exception:
                log.exception("the prediction log's flush thread hit an error; it goes on")
