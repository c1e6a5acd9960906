"""The cities the HTTP server knows, and what serves each one, read from the registry at most once per interval.

A request must not cost registry calls: the kill switch, the city's champion and its fallback parent are read
together (:func:`airflow_ml.ml.kill_switch.disabled`, :func:`airflow_ml.ml.fallback.which_model_serves`) and the
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

    @property
    def path(self) -> str:
        """``<template>/<city>``, as the URL names it."""
        return f"{self.template}/{self.city}"


@dataclass(frozen=True)
class Route:
    """What serves a city now: a model version, or why nothing does.

    Attributes:
        model_name: The registered model that serves (the city's own, or its parent's), or None.
        version: Its champion version, or None.
        source: ``own``, ``parent``, ``none`` or ``disabled``.
        reason: One sentence: which_model_serves' reason, or the kill switch's mark.
        disabled: The kill switch's mark (:meth:`airflow_ml.ml.kill_switch.Disabled.to_dict`), or None.
    """

    model_name: str | None
    version: str | None
    source: str
    reason: str
    disabled: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {
            "model_name": self.model_name,
            "version": self.version,
            "source": self.source,
            "reason": self.reason,
            "disabled": self.disabled,
        }


def read_route(client: MlflowClient, city: ServedCity) -> Route:
    """Ask the registry what serves ``city``: its kill switch first, then its champion or its parent's.

    A parent disabled by the kill switch serves none of its members either.
    """
    from airflow_ml.exceptions import ForeignChampion
    from airflow_ml.ml.fallback import which_model_serves
    from airflow_ml.ml.kill_switch import disabled

    mark = disabled(client, city.model_name)
    if mark is not None:
        return Route(None, None, "disabled", mark.sentence(), mark.to_dict())
    try:
        serving = which_model_serves(client, city.model_name, city.parent_model_name)
    except ForeignChampion as exc:
        return Route(None, None, "none", str(exc))
    if serving.model_name is None:
        return Route(None, None, "none", serving.reason)
    if serving.source == "parent":
        mark = disabled(client, serving.model_name)
        if mark is not None:
            return Route(None, None, "disabled", f"its parent serves it, but {mark.sentence()}", mark.to_dict())
    return Route(serving.model_name, serving.version, serving.source, serving.reason)


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
