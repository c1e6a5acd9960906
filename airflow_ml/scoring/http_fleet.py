"""The cities the HTTP server knows, and what serves each one, read from the registry at most once per interval.

A request must not cost registry calls: the kill switch, the city's champion and its fallback parent are read
together (:func:`airflow_ml.ml.kill_switch.serving_route`, the one answer batch scoring uses too) and the
answer is trusted for ``ttl`` seconds, like :class:`airflow_ml.ml.model_cache.ModelCache` trusts an alias. A moved
champion, a disabled or enabled city, a parent that takes over: each is served at most ``ttl`` seconds after it
happened. One thread reads a city's answer when it is stale; the others asking for that city wait for it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_ml.ml.kill_switch import ServingRoute, serving_route

if TYPE_CHECKING:
    from mlflow import MlflowClient

#: How many known names an error lists at most (a fleet has hundreds of cities).
KNOWN_SHOWN = 20


@dataclass(frozen=True)
class ServedCity:
    """One city as the YAML describes it, all the HTTP server needs of it.

    Args:
        template: The city's template.
        city: The city's id.
        model_name: Its registered model (``<template>.<city>``).
        parent_model_name: Its fallback parent's registered model, or None (``fallback.parent: none``).
        features: The feature columns, in model order (the prediction id's content when no key is named).
        output_root: Root of the city's prediction log (``scoring.output`` with the data root filled in).
        key_columns: ``scoring.key_columns``: the columns that make the prediction id.
        keep_columns: ``scoring.keep_columns``: further columns kept in the log when a request sends them.
        storage_options: Options of the log's filesystem, by protocol (credentials of an ``s3://`` root).
        column_kinds: Column → the kind the dataset contract declares (``time`` for the time column,
            ``numeric``...): key and kept columns are typed by it, as batch reads them, before the ids are made.
    """

    template: str
    city: str
    model_name: str
    parent_model_name: str | None
    features: tuple[str, ...]
    output_root: str
    key_columns: tuple[str, ...] = ()
    keep_columns: tuple[str, ...] = ()
    storage_options: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)
    column_kinds: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def path(self) -> str:
        """``<template>/<city>``, as the URL names it."""
        return f"{self.template}/{self.city}"


#: What serves a city now (the one answer batch scoring gives too): see :func:`read_route`.
Route = ServingRoute


def read_route(client: MlflowClient, city: ServedCity) -> ServingRoute:
    """Ask the registry what serves ``city``: :func:`airflow_ml.ml.kill_switch.serving_route`, as batch scoring.

    A disabled city, or one whose serving parent is disabled, gets no version; nor does one whose champion was
    trained for another city (``source`` ``foreign``, the lineage problem in the reason).
    """
    return serving_route(client, city.model_name, city.parent_model_name)


class RouteTable:
    """Each city's :class:`Route`, read again when older than ``ttl`` seconds (thread-safe).

    Args:
        client: The registry.
        ttl: Seconds an answer is trusted (0: every call asks the registry).
        reader: How a route is read (default :func:`read_route`).
        clock: Monotonic seconds (default :func:`time.monotonic`).
    """

    def __init__(
        self,
        client: MlflowClient,
        *,
        ttl: float,
        reader: Callable[[MlflowClient, ServedCity], Route] = read_route,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl < 0:
            raise ValueError(f"ttl={ttl}: seconds, 0 or more")
        self._client = client
        self._ttl = ttl
        self._reader = reader
        self._clock = clock
        self._lock = threading.Lock()
        self._routes: dict[str, tuple[Route, float]] = {}
        self._city_locks: dict[str, threading.Lock] = {}
        self.reads = 0

    def route(self, city: ServedCity) -> Route:
        """What serves ``city``, as read at most ``ttl`` seconds ago."""
        fresh = self._fresh(city.path)
        if fresh is not None:
            return fresh
        with self._lock:
            city_lock = self._city_locks.setdefault(city.path, threading.Lock())
        with city_lock:
            fresh = self._fresh(city.path)  # another thread may have read it while this one waited
            if fresh is not None:
                return fresh
            now = self._clock()
            route = self._reader(self._client, city)
            with self._lock:
                self._routes[city.path] = (route, now)
                self.reads += 1
            return route

    def forget(self, city: ServedCity) -> None:
        """Drop what is known of ``city``: the next request reads the registry."""
        with self._lock:
            self._routes.pop(city.path, None)

    def _fresh(self, path: str) -> Route | None:
        with self._lock:
            known = self._routes.get(path)
        if known is not None and self._clock() - known[1] < self._ttl:
            return known[0]
        return None


def bounded(names: Iterable[str], limit: int = KNOWN_SHOWN) -> str:
    """``names`` sorted, at most ``limit`` of them, saying how many more there are."""
    ordered = sorted(names)
    shown = ", ".join(ordered[:limit])
    more = len(ordered) - limit
    return f"{shown} (and {more} more: GET /v1/models lists them all)" if more > 0 else shown
