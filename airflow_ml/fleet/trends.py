"""Each city's gate metric over its successive registered versions, and its live metric where the monitor measured one.

One ``search_model_versions`` call per template reads the template's newest versions (:data:`MAX_POINTS` per
city on average, so that the cost does not grow with the fleet's history) with their tags; a city the window
cut short (it retrains less often than the others) gets one search of its own. The tags: the holdout score
the gate judged each on (``gate.challenger_score``, on ``gate.metric``) and the monitor's newest live figure
while it was champion (``monitor.live_<metric>``). Plain Python over an ``MlflowClient``; MLflow is only
imported by the caller. A failure is returned with the trends, never raised.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_ml.fleet.model_states import short_error, tag_number

if TYPE_CHECKING:
    from mlflow import MlflowClient

#: The most versions a trend shows (the newest), and the versions per city one page reads from the registry.
MAX_POINTS = 12
_PAGE = 10_000  # MLflow's default page of model versions
_WORKERS = 8  # concurrent searches for the few cities behind the others


@dataclass(frozen=True)
class TrendPoint:
    """One registered version: the holdout score it was judged on, and the live score measured while it served."""

    version: str
    holdout: float | None
    live: float | None = None
    decision: str | None = None


@dataclass(frozen=True)
class Trend:
    """A city's versions in order, on one metric (the newest version's), at most :data:`MAX_POINTS`."""

    metric: str | None = None
    points: tuple[TrendPoint, ...] = ()
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``metric``, ``points`` (``version``, ``holdout``, ``live``, ``decision``), ``error``."""
        return {
            "metric": self.metric,
            "points": [vars(point).copy() for point in self.points],
            "error": self.error,
        }


def read_trends(client: MlflowClient, names: Iterable[str]) -> dict[str, Trend]:
    """The trend of every model in ``names`` (``<template>.<city>``), one registry search per template.

    Returns:
        One :class:`Trend` per name: empty for a model without judged versions; with ``error`` set on every
        model of a template whose search failed.
    """
    names = list(names)
    versions, errors = list_versions(client, names)
    complete_versions(client, versions, [name for name in names if name not in errors])
    return trends_of(names, versions, errors)


def trends_of(
    names: Iterable[str], versions: Mapping[str, Sequence[Any]], errors: Mapping[str, str]
) -> dict[str, Trend]:
    """The trend of each of ``names`` from :func:`list_versions`' answer."""
    return {
        name: Trend(error=f"trend unavailable: {errors[name]}") if name in errors else trend_of(versions.get(name, []))
        for name in names
    }


def list_versions(client: MlflowClient, names: Iterable[str]) -> tuple[dict[str, list[Any]], dict[str, str]]:
    """The newest versions (with their tags) of the models in ``names``, one search per template; never raises.

    Returns:
        The versions of each model that has some, and the error of each model whose template's search failed.
    """
    by_prefix: dict[str, set[str]] = defaultdict(set)
    for name in names:
        by_prefix[name.rpartition(".")[0]].add(name)
    versions: dict[str, list[Any]] = {}
    errors: dict[str, str] = {}
    for prefix, wanted in sorted(by_prefix.items()):
        try:
            versions.update(_versions(client, prefix, wanted))
        except Exception as exc:  # noqa: BLE001 - shown beside the trend, never raised
            errors.update(dict.fromkeys(wanted, short_error(exc)))
    return versions, errors


def complete_versions(client: MlflowClient, versions: dict[str, list[Any]], candidates: Iterable[str]) -> None:
    """Give each of ``candidates`` (registered models) whose trend the template's window cut short its own newest
    versions in ``versions``: one search each, side by side; a failure leaves that model's trend as it was.

    A model is cut short when none of its versions was in the window (it retrains far less often than the
    others), or when fewer than :data:`MAX_POINTS` were and the oldest of them is not its version 1 (it has older
    versions the window did not reach).
    """

    def newest(name: str) -> list[Any]:
        try:
            return list(
                client.search_model_versions(
                    filter_string=f"name = '{name}'", max_results=MAX_POINTS, order_by=["version_number DESC"]
                )
            )
        except Exception:  # noqa: BLE001 - a missing trend is shown as such; the row has the model's state
            return []

    names = [name for name in candidates if cut_short(versions.get(name, []))]
    with ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="fleet-trends") as pool:
        for name, found in zip(names, pool.map(newest, names), strict=True):
            if len(found) > len(versions.get(name, [])):
                versions[name] = found


def cut_short(found: Sequence[Any]) -> bool:
    """Whether a model's versions ``found`` in the window may miss ones a trend of :data:`MAX_POINTS` would show."""
    if not found:
        return True
    return len(found) < MAX_POINTS and min(int(v.version) for v in found) > 1


def _versions(client: MlflowClient, prefix: str, wanted: set[str]) -> dict[str, list[Any]]:
    """The newest versions of the models in ``wanted``, with one search on their common name prefix."""
    # Names are slugs (no quotes). '_' is a LIKE wildcard: a few more models may match; they are dropped.
    pattern = f"{prefix}.%" if prefix else "%"
    # The template's newest versions, MAX_POINTS per city on average: the page's cost stays bounded however long
    # the fleet's history grows (a city retrained nightly registers a version a night).
    limit = MAX_POINTS * len(wanted)
    found: dict[str, list[Any]] = defaultdict(list)
    token: str | None = None
    read = 0
    while read < limit:
        page = client.search_model_versions(
            filter_string=f"name LIKE '{pattern}'",
            max_results=min(_PAGE, limit - read),
            order_by=["creation_timestamp DESC"],
            page_token=token,
        )
        read += len(page)
        for version in page:
            if version.name in wanted:
                found[version.name].append(version)
        token = page.token
        if not token:
            break
    return found


def trend_of(versions: Iterable[Any]) -> Trend:
    """A model's trend from its versions (objects with ``version`` and ``tags``), in version order.

    Only versions the gate judged on the newest judged version's metric count: a template whose metric
    changed draws one comparable line, not two scales in one.
    """
    judged = []
    for version in sorted(versions, key=lambda v: int(v.version)):
        tags = dict(version.tags or {})
        metric = tags.get("gate.metric")
        if metric and tag_number(tags.get("gate.challenger_score")) is not None:
            judged.append((str(version.version), metric, tags))
    if not judged:
        return Trend()
    metric = judged[-1][1]
    points = tuple(
        TrendPoint(
            version=number,
            holdout=tag_number(tags.get("gate.challenger_score")),
            live=tag_number(tags.get(f"monitor.live_{metric}")),
            decision=tags.get("gate.decision") or None,
        )
        for number, used, tags in judged
        if used == metric
    )
    return Trend(metric=metric, points=points[-MAX_POINTS:])
