"""What the MLflow registry says about each city's model: champion, its score, the last gate decision.

Plain Python over an ``MlflowClient`` (MLflow is imported only inside functions, so the plugin that
imports this module stays light in every Airflow process). The fleet is read with one
``search_registered_models`` call per template (a page holds 1000 models): it gives every model's
aliases and its latest version with that version's tags. Only a city whose champion is not its latest
version, or whose latest version has no decision yet, costs one more call (made concurrently). A failure
is recorded on the rows it concerns and never raises, so one unreachable store or broken model never
hides the fleet.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

# airflow_ml.ml.model_registry's names; that module imports pandas, so it is not imported here.
CHAMPION = "champion"
PREVIOUS_CHAMPION = "previous-champion"
CHAMPION_VERSION_TAG = "airflow_ml.champion_version"
_PAGE = 1000  # MLflow's most registered models per search page
_LOOKBACK = 20  # versions searched for the last decision when the latest version has none
_WORKERS = 8  # concurrent per-model lookups


@dataclass(frozen=True)
class ModelState:
    """One city's model in the registry.

    Attributes:
        name: The registered model (``<template>.<city>``).
        registered: False when the registry has no such model yet.
        champion_version: The version behind the ``champion`` alias, or None.
        metric: The metric the gate compared when the champion was decided (its ``gate.metric`` tag).
        score: The champion's score on that metric, on the holdout it was judged on (``gate.challenger_score``).
        decision: The last gate decision (``gate.decision`` of the newest decided version).
        reason: That decision's one-line reason (``gate.reason``).
        decision_version: The version that decision was about.
        decision_run_id: The Airflow run that decided: a version's older ``gate.airflow_run_id`` tag, else the run
            that registered it (``airflow.run_id``; the gate and the approval act in that run).
        error: What went wrong while reading this model, or None.
        naive_baseline: That decision's naive baseline (``gate.naive_baseline``: statistic, score, skill...).
        champion_gone: Without a champion, what became of the one it had (deleted, or its alias removed), from
            the model's ``airflow_ml.champion_version`` tag or a ``previous-champion`` left behind; else None.
        live: The monitor's newest figures of the champion (its ``monitor.*`` tags): ``value``, ``low``,
            ``high``, ``previous`` (the window before), ``window``, ``labels``, ``verdict``; None when unmonitored.
        disabled: The kill switch's mark (``model_name``, ``reason``, ``by``, ``at``) when the city must not be
            served (``airflow-ml disable``), from the registered model's tags; else None.
    """

    name: str
    registered: bool = False
    champion_version: str | None = None
    metric: str | None = None
    score: float | None = None
    decision: str | None = None
    reason: str | None = None
    decision_version: str | None = None
    decision_run_id: str | None = None
    error: str | None = None
    naive_baseline: dict[str, Any] | None = None
    champion_gone: str | None = None
    live: dict[str, Any] | None = None
    disabled: dict[str, str] | None = None


def read_models(
    client: MlflowClient, names: Iterable[str], *, versions: Mapping[str, Sequence[Any]] | None = None
) -> dict[str, ModelState]:
    """Read the registry state of every model in ``names``; never raises.

    Args:
        client: The MLflow client of the fleet's connection.
        names: Registered model names, ``<template>.<city>``.
        versions: Every version of each model, when the caller has read them already
            (:func:`airflow_ml.fleet.trends.list_versions`, the newest ones): a kept champion and the last
            decision are then found among them, with no call per model; one older than them is looked up.

    Returns:
        One :class:`ModelState` per name; a model the registry lacks has ``registered=False``. A failure
        is in ``error``: ``registry unreachable: ...`` when the search failed (every model of that
        template), ``registry error on <model>: ...`` when only that model's lookup did.
    """
    by_prefix: dict[str, set[str]] = defaultdict(set)
    for name in names:
        by_prefix[name.rpartition(".")[0]].add(name)
    states: dict[str, ModelState] = {}
    for prefix, wanted in sorted(by_prefix.items()):
        try:
            found = _search(client, prefix, wanted)
        except Exception as exc:  # noqa: BLE001 - any store failure is shown on the rows, not raised
            error = f"registry unreachable: {short_error(exc)}"
            states.update({name: ModelState(name, error=error) for name in wanted})
            continue
        states.update({name: ModelState(name) for name in wanted - found.keys()})
        # Most models need no further call; those that do (a kept champion, an undecided latest version)
        # are looked up side by side, so a remote registry's latency is not paid once per city.
        with ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="fleet-registry") as pool:
            looked_up = pool.map(lambda model: _state(client, model, (versions or {}).get(model.name)), found.values())
            states.update(zip(found, looked_up, strict=True))
    return states


def _search(client: MlflowClient, prefix: str, wanted: set[str]) -> dict[str, Any]:
    """The registered models among ``wanted``, with one search (per 1000 models) on their common prefix."""
    # Names are slugs (no quotes). '_' is a LIKE wildcard: a few more models may match; they are dropped.
    pattern = f"{prefix}.%" if prefix else "%"
    found: dict[str, Any] = {}
    token: str | None = None
    while True:
        page = client.search_registered_models(
            filter_string=f"name LIKE '{pattern}'", max_results=_PAGE, page_token=token
        )
        found.update({m.name: m for m in page if m.name in wanted})
        token = page.token
        if not token:
            return found


def _state(client: MlflowClient, model: Any, known: Sequence[Any] | None = None) -> ModelState:
    name = model.name
    try:
        latest = max(model.latest_versions or [], key=lambda v: int(v.version), default=None)
        by_number = {str(v.version): v for v in known or ()}
        champion_version = (model.aliases or {}).get(CHAMPION)
        champion = None
        if champion_version is not None:
            champion_version = str(champion_version)
            if latest is not None and str(latest.version) == champion_version:
                champion = latest
            else:
                champion = by_number.get(champion_version) or client.get_model_version(name, champion_version)
        decided = latest if latest is not None and _tags(latest).get("gate.decision") else None
        if decided is None and latest is not None:
            newest_first = sorted(by_number.values(), key=lambda v: int(v.version), reverse=True)
            # The versions read hold only the newest few: a decision older than them costs its own search.
            found = next((v for v in newest_first if _tags(v).get("gate.decision")), None)
            decided = found or _last_decided(client, name)
    except Exception as exc:  # noqa: BLE001 - one broken model must not break the fleet
        return ModelState(name, registered=True, error=f"registry error on {name}: {short_error(exc)}")
    champion_tags = _tags(champion) if champion is not None else {}
    decided_tags = _tags(decided) if decided is not None else {}
    return ModelState(
        name,
        registered=True,
        champion_version=champion_version,
        metric=champion_tags.get("gate.metric") or None,
        score=tag_number(champion_tags.get("gate.challenger_score")),
        decision=decided_tags.get("gate.decision") or None,
        reason=decided_tags.get("gate.reason") or None,
        decision_version=str(decided.version) if decided is not None else None,
        decision_run_id=_decision_run(decided_tags),
        naive_baseline=_json_object(decided_tags.get("gate.naive_baseline")),
        champion_gone=None if champion_version is not None else _champion_gone(model),
        live=_live(champion_tags, champion_tags.get("gate.metric")),
        disabled=_disabled(name, model),
    )


def _decision_run(tags: dict[str, str]) -> str | None:
    """The Airflow run of a version's decision: the older ``gate.airflow_run_id`` tag, else ``airflow.run_id``.

    Versions decided before the gate kept only :data:`~airflow_ml.ml.model_registry.GATE_TAGS` name the
    deciding run (a shadow promotion's: the monitor's) in ``gate.airflow_run_id``; newer ones are decided in
    the run that registered them, or by the monitor, whose run the version's description names.
    """
    return tags.get("gate.airflow_run_id") or tags.get("airflow.run_id") or None


def _live(tags: dict[str, str], metric: str | None) -> dict[str, Any] | None:
    """The monitor's newest live figures of a champion, from the tags the monitor sets on its version."""
    verdict = tags.get("monitor.verdict")
    if not verdict:
        return None
    interval = _json_list(tags.get("monitor.live_interval"))
    low, high = (tag_number(json.dumps(bound)) for bound in interval) if len(interval) == 2 else (None, None)
    labels = tags.get("monitor.live_labels")
    return {
        "verdict": verdict,
        "value": tag_number(tags.get(f"monitor.live_{metric}")) if metric else None,
        "low": low,
        "high": high,
        "previous": tag_number(tags.get("monitor.live_previous")),
        "window": tags.get("monitor.live_window"),
        "labels": int(labels) if labels and labels.isdigit() else None,
        "checked_day": tags.get("monitor.checked_day"),
    }


def _disabled(name: str, model: Any) -> dict[str, str] | None:
    """The kill switch's mark from the registered model's tags (no further registry call)."""
    from airflow_ml.ml.kill_switch import from_tags

    mark = from_tags(name, dict(model.tags or {}))
    return mark.to_dict() if mark is not None else None


def _champion_gone(model: Any) -> str | None:
    """What became of the champion of a model that has none now, when it had one; None when it never had."""
    recorded = (model.tags or {}).get(CHAMPION_VERSION_TAG)
    previous = (model.aliases or {}).get(PREVIOUS_CHAMPION)
    if recorded:
        return f"its champion v{recorded} was deleted, or its alias removed"
    return f"its champion was deleted ({PREVIOUS_CHAMPION} v{previous} is left)" if previous is not None else None


def _json_list(text: str | None) -> list[Any]:
    """A tag holding a JSON list, or an empty list."""
    try:
        value = json.loads(text) if text else []
    except ValueError:
        return []
    return value if isinstance(value, list) else []


def _json_object(text: str | None) -> dict[str, Any] | None:
    """A tag holding a JSON object (as :func:`airflow_ml.ml.model_registry.tag_decision` writes one), or None."""
    try:
        value = json.loads(text) if text else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _last_decided(client: MlflowClient, name: str) -> ModelVersion | None:
    """The newest version with a gate decision among the last few (the newest may still be undecided)."""
    versions = client.search_model_versions(
        filter_string=f"name = '{name}'", max_results=_LOOKBACK, order_by=["version_number DESC"]
    )
    return next((v for v in versions if _tags(v).get("gate.decision")), None)


def _tags(version: Any) -> dict[str, str]:
    return dict(version.tags or {})


def tag_number(text: str | None) -> float | None:
    """A score tag (JSON text, as :func:`airflow_ml.ml.model_registry.tag_decision` writes it) as a float."""
    if text is None:
        return None
    try:
        value = float(json.loads(text))
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def short_error(exc: BaseException, limit: int = 300) -> str:
    """One line of an exception, at most ``limit`` characters, naming its type."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = f"{type(exc).__name__}: {text}" if type(exc).__name__ not in text else text
    return text if len(text) <= limit else text[: limit - 1] + "…"
