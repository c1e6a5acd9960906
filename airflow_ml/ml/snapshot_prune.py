"""Prune snapshots that no registered version needs, beyond the newest few of each DAG.

The registry is the source of truth: it is read whole before anything is deleted, and when it cannot be read,
nothing is pruned and :class:`PruneRefused` says why; a DAG whose model it lacks is left whole (see
:func:`unregistered_dags`). The rules a snapshot is kept by are
:mod:`airflow_ml.data.retention`'s; the policies (``keep_last`` per DAG) come from the templates.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from mlflow import MlflowClient

from airflow_ml.data.retention import (
    StoredSnapshot,
    Verdict,
    delete_snapshots,
    list_snapshots,
    location_key,
    plan_retention,
)
from airflow_ml.data.snapshot import safe_segment
from airflow_ml.data.storage import StorageOptions
from airflow_ml.exceptions import AirflowMLError
from airflow_ml.ml.lineage import registered_snapshots


class PruneRefused(AirflowMLError):
    """Nothing was pruned: the registry (the source of truth of lineage) could not be read, or is empty."""


@dataclass(frozen=True)
class PruneReport:
    """What a prune kept and deleted, and why.

    Attributes:
        verdicts: One per snapshot in scope, with its reason.
        deleted: The locations deleted (none in a dry run).
        dry_run: Whether nothing was deleted on purpose.
        problems: DAGs left alone, each with why (the registry holds no model of theirs): warnings.
    """

    verdicts: list[Verdict]
    deleted: list[str]
    dry_run: bool
    problems: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """One line per snapshot (``keep``, ``delete`` or ``would delete``, location, why), then a summary."""
        out = [v.line(dry_run=self.dry_run) for v in self.verdicts]
        kept = sum(v.keep for v in self.verdicts)
        doomed = len(self.verdicts) - kept
        done = f"would delete {doomed} (dry run: nothing deleted)" if self.dry_run else f"deleted {len(self.deleted)}"
        out.append(f"{len(self.verdicts)} snapshot(s): kept {kept}, {done}")
        return out


def prune_snapshots(
    client: MlflowClient,
    snapshot_root: str,
    *,
    keep_last: Mapping[tuple[str, str], int],
    kept: Mapping[tuple[str, str], str] | None = None,
    model_names: Mapping[tuple[str, str], str] | None = None,
    templates: Collection[str] | None = None,
    old_layout_cities: Collection[str] | None = None,
    prune_old_layout: bool = False,
    dry_run: bool = False,
    storage_options: StorageOptions | None = None,
) -> PruneReport:
    """Keep every snapshot a registered version points at and the newest ``keep_last`` others per DAG; delete the rest.

    Args:
        client: The registry whose versions' lineage is kept.
        snapshot_root: ``<data root>/snapshots``.
        keep_last: ``(template, city) -> N`` of the DAGs whose retention is on.
        kept: ``(template, city) -> why`` of the DAGs that keep every snapshot.
        model_names: ``(template, city) -> registered model`` (a template's ``registry.name_pattern``); a DAG
            missing here is taken to register ``<template>.<city>``.
        templates: Only these templates' snapshots (all when None).
        old_layout_cities: Only these cities' old-layout snapshots (all when None).
        prune_old_layout: Also delete unregistered snapshots of the old layout ``<root>/<city>/<run>``.
        dry_run: Decide and report; delete nothing.
        storage_options: fsspec options of the snapshot root's protocol.

    Raises:
        PruneRefused: when the registry cannot be read, or holds no model at all while a complete snapshot lies
            in scope (nothing was deleted).
    """
    snapshots = list_snapshots(snapshot_root, storage_options=storage_options)
    if templates is not None:
        wanted = {safe_segment(t) for t in templates}
        cities = None if old_layout_cities is None else {safe_segment(c) for c in old_layout_cities}
        snapshots = [
            s
            for s in snapshots
            if (s.template in wanted if s.layout == "dag" else (cities is None or s.city in cities))
        ]
    if not snapshots:
        return PruneReport([], [], dry_run)
    try:
        references, models = registered_snapshots(client)
    except Exception as exc:  # whatever the registry raised (it re-raises as ours), nothing may be deleted
        raise PruneRefused(
            f"cannot read the model registry ({type(exc).__name__}: {exc}); nothing was pruned: lineage is read "
            "from the registry before any snapshot is deleted; check the MLflow connection and try again"
        ) from exc
    if not models and any(s.complete for s in snapshots):  # refused runs' folders hold no data: none to lose
        raise PruneRefused(
            f"the model registry holds no registered model at all, yet {len(snapshots)} snapshot(s) lie under "
            f"{snapshot_root}; nothing was pruned: it is not the registry their runs used (check the MLflow "
            "connection)"
        )
    referenced: dict[str, list[str]] = {}
    for uri, who in references.items():
        referenced.setdefault(location_key(uri), []).extend(who)
    problems, unsure = unregistered_dags(snapshots, models, keep_last, model_names)
    verdicts = plan_retention(
        snapshots,
        referenced=referenced,
        keep_last=keep_last,
        kept={**(kept or {}), **unsure},
        prune_old_layout=prune_old_layout,
        storage_options=storage_options,
    )
    deleted = [] if dry_run else delete_snapshots(verdicts, storage_options=storage_options)
    return PruneReport(verdicts, deleted, dry_run, problems)


def unregistered_dags(
    snapshots: Sequence[StoredSnapshot],
    models: Collection[str],
    keep_last: Mapping[tuple[str, str], int],
    model_names: Mapping[tuple[str, str], str] | None = None,
) -> tuple[list[str], dict[tuple[str, str], str]]:
    """The DAGs whose snapshots are all kept because the registry holds no model of theirs, with a warning each.

    The guard against the wrong registry (a mistyped tracking URI, another team's) works per DAG: a registry
    holding ``ride_duration.berlin`` only says nothing of ``ride_duration.lisbon``'s lineage, so a DAG whose
    retention would prune (``keep_last``) and whose model (``model_names``, else ``<template>.<city>``) the
    registry lacks keeps every
    snapshot. Except when its folders show that it never registered anything: when all of them are refused
    runs (``refusal.json`` only), no version can point at them, since a refused run wrote no snapshot. A DAG
    with a complete snapshot is kept whole even if its runs all failed later (validation, say): from the files
    alone, a run that registered in another registry cannot be told apart. Its first registered version lifts
    the guard.

    Returns:
        The warnings, and ``(template folder, city folder) -> why`` of the DAGs kept whole.
    """
    registered = {tuple(safe_segment(part) for part in name.split(".", 1)) for name in models if "." in name}
    named = {(safe_segment(t), safe_segment(c)): name for (t, c), name in (model_names or {}).items()}
    pruned = {(safe_segment(t), safe_segment(c)) for t, c in keep_last}
    folders: dict[tuple[str, str], list[StoredSnapshot]] = {}
    for snap in snapshots:
        if snap.layout == "dag":
            folders.setdefault((snap.template, snap.city), []).append(snap)
    problems, unsure = [], {}
    for dag, theirs in sorted(folders.items()):
        model = named.get(dag)
        own = model in models if model is not None else dag in registered
        if own or dag not in pruned or all(s.refused for s in theirs):
            continue
        name = model or ".".join(dag)
        why = (
            f"the registry holds no model {name!r}: every snapshot of {'.'.join(dag)} is kept; if its runs registered "
            "models, this is not their registry (check the MLflow connection)"
        )
        problems.append(why)
        unsure[dag] = why
    return problems, unsure
