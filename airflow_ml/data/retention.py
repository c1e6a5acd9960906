"""Snapshot retention on a data root: list the snapshots, decide which to keep and why, delete the rest.

Plain fsspec, so a local folder and ``s3://`` behave alike. What lineage needs comes from the caller (the
registry is the source of truth, see :mod:`airflow_ml.ml.snapshot_prune`): here a snapshot is kept when

1. a registered version points at it (``referenced``, by location or by its manifest's own ``uri``);
2. it is incomplete (no ``manifest.json`` yet, and no refusal record): a run may be writing it, however old;
3. its DAG keeps everything (``retention.enabled: false``), or no valid city or parent of the templates
   names its DAG (a removed or broken city file: nothing is deleted on a guess);
4. it is one of the newest ``keep_last`` of its DAG's other snapshots (by the manifest's write time);
5. it lies in the old layout ``<root>/<city>/<run>/`` (written before snapshots were keyed by template),
   unless ``prune_old_layout`` is asked for.

Everything else is deleted, folder and records (drift, verdict, decision) together. A folder that holds only
``refusal.json`` (a run refused at its snapshot, see :mod:`airflow_ml.data.refusal`) is a finished, failed
run: it counts among its DAG's unregistered snapshots and goes like them beyond ``keep_last``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from airflow_ml.data.refusal import REFUSAL
from airflow_ml.data.snapshot import DATA_FILE, MANIFEST, safe_segment
from airflow_ml.data.snapshot_parts import PARTS_FOLDER
from airflow_ml.data.storage import StorageOptions, display, filesystem, protocol, storage_errors

#: Files that make a folder a snapshot (complete or being written); ``data/`` stands for a partitioned one's parts.
_SNAPSHOT_FILES = {MANIFEST, DATA_FILE, f"{MANIFEST}.partial", f"{DATA_FILE}.partial", f"{PARTS_FOLDER}/"}
#: What the listing looks for: a snapshot's files, and the record of a run refused at its snapshot.
_LISTED = _SNAPSHOT_FILES | {REFUSAL}


@dataclass(frozen=True)
class StoredSnapshot:
    """A snapshot folder found under the snapshot root.

    Attributes:
        location: Its folder, as a person looks it up (a local path, or a full ``s3://`` URL).
        layout: ``dag`` (``<root>/<template>/<city>/<run>``) or ``old`` (``<root>/<city>/<run>``).
        template: The template folder (empty in the old layout).
        city: The city folder (a fallback parent's ``global`` or ``group.<group>``).
        run: The run folder.
        complete: Whether its manifest is there (it is written last).
        written: When its manifest (or, for a refused run, its refusal record) was written (POSIX seconds); 0
            when it has neither.
        refused: Whether it holds only the refusal record of a run its snapshot task refused: no data, no
            manifest, nothing being written.
    """

    location: str
    layout: Literal["dag", "old"]
    template: str
    city: str
    run: str
    complete: bool
    written: float
    refused: bool = False

    @property
    def dag(self) -> str:
        """``<template>.<city>``, or ``<city> (old layout)``."""
        return f"{self.template}.{self.city}" if self.layout == "dag" else f"{self.city} (old layout)"


@dataclass(frozen=True)
class Verdict:
    """What happens to one snapshot, and why."""

    snapshot: StoredSnapshot
    keep: bool
    reason: str

    def line(self, *, dry_run: bool = False) -> str:
        """``keep   <location>  <why>`` or ``delete <location>  <why>`` (``would delete`` in a dry run)."""
        action = "keep" if self.keep else ("would delete" if dry_run else "delete")
        return f"{action:<12} {self.snapshot.location}  {self.reason}"


def list_snapshots(snapshot_root: str, *, storage_options: StorageOptions | None = None) -> list[StoredSnapshot]:
    """Every snapshot folder under ``snapshot_root``, in both layouts, sorted by location (one recursive listing).

    A folder is a snapshot when it holds a manifest, a data file (``.partial`` ones included), the part files of a
    partitioned snapshot (``data/``, or ``data.partial-*/`` while written) or a refusal record; its depth tells the
    layout: three levels below the root for ``<template>/<city>/<run>``, two for
    the old ``<city>/<run>``.
    """
    fs, root = filesystem(snapshot_root, storage_options)
    root = root.rstrip("/")
    with storage_errors(snapshot_root, storage_options):
        if not fs.exists(root):
            return []
        listing = fs.find(root, detail=True)
    folders: dict[tuple[str, ...], dict[str, float]] = {}
    for path, info in listing.items():
        parts = tuple(path[len(root) :].strip("/").split("/"))
        if _is_part(parts):  # <template>/<city>/<run>/data[.partial-<token>]/part.N.parquet
            parts = (*parts[:3], f"{PARTS_FOLDER}/")
        if parts[-1] not in _LISTED or len(parts) not in (3, 4):
            continue
        folders.setdefault(parts[:-1], {})[parts[-1]] = _modified(info)
    found = []
    for folder, files in folders.items():
        template, city, run = folder if len(folder) == 3 else ("", *folder)
        location = display(fs, f"{root}/{'/'.join(folder)}")
        refused = not _SNAPSHOT_FILES.intersection(files)  # only the refusal: nothing is being written
        record = MANIFEST if MANIFEST in files else REFUSAL if refused else None
        written = files[record] if record else None
        if record and written is not None and written <= 0:  # a store that lists no time: the record has one
            written = _created(location, record, storage_options)
        found.append(
            StoredSnapshot(
                location=location,
                layout="dag" if len(folder) == 3 else "old",
                template=template,
                city=city,
                run=run,
                complete=MANIFEST in files,
                written=written or 0.0,
                refused=refused,
            )
        )
    return sorted(found, key=lambda s: s.location)


def _is_part(parts: tuple[str, ...]) -> bool:
    """A part file of a partitioned snapshot (``data/``), or of one being written aside (``data.partial-*``)."""
    folder = parts[3] if len(parts) == 5 else ""
    return (folder == PARTS_FOLDER or folder.startswith(f"{PARTS_FOLDER}.partial-")) and parts[4].endswith(".parquet")


def location_key(uri: str) -> str:
    """A comparable form of a snapshot URI: ``file:/abs/path`` or ``s3:bucket/key`` (``s3a`` is ``s3``)."""
    kind = protocol(uri)
    rest = uri.split("://", 1)[1] if "://" in uri else uri
    if kind in ("file", "local"):
        return "file:" + os.path.normpath(os.path.abspath(rest))
    return f"{'s3' if kind == 's3a' else kind}:{rest.strip('/')}"


def plan_retention(
    snapshots: Sequence[StoredSnapshot],
    *,
    referenced: Mapping[str, Sequence[str]],
    keep_last: Mapping[tuple[str, str], int],
    kept: Mapping[tuple[str, str], str] | None = None,
    prune_old_layout: bool = False,
    storage_options: StorageOptions | None = None,
) -> list[Verdict]:
    """Decide, for each snapshot, whether it stays and why (see the module's rules, in their order).

    Args:
        snapshots: What :func:`list_snapshots` found (already limited to the templates in scope).
        referenced: :func:`location_key` of each snapshot URI a registered version points at → who points at it.
        keep_last: ``(template, city) -> N`` of the DAGs whose retention is on.
        kept: ``(template, city) -> why`` of the DAGs that keep every snapshot.
        prune_old_layout: Delete unregistered snapshots of the old layout too.
        storage_options: To read a deletion candidate's manifest, whose ``uri`` is checked against ``referenced``
            as well (a data root written under another spelling of the same path).

    Returns:
        One verdict per snapshot, in the order of ``snapshots``.
    """
    kept = kept or {}
    policy = {(safe_segment(t), safe_segment(c)): n for (t, c), n in keep_last.items()}
    keeps_all = {(safe_segment(t), safe_segment(c)): why for (t, c), why in kept.items()}
    verdicts: dict[str, Verdict] = {}
    others: dict[tuple[str, str], list[StoredSnapshot]] = {}
    for snap in snapshots:
        who = referenced.get(location_key(snap.location))
        if who:
            verdicts[snap.location] = Verdict(snap, True, f"registered: {'; '.join(who)}")
        elif not snap.complete and not snap.refused:
            verdicts[snap.location] = Verdict(snap, True, f"incomplete (no {MANIFEST}): a run may be writing it")
        elif snap.layout == "old":
            if prune_old_layout:
                others.setdefault(("", snap.city), []).append(snap)
            else:
                verdicts[snap.location] = Verdict(
                    snap, True, "old layout (before snapshots were keyed by template), not registered; "
                    "--prune-old-layout deletes it",
                )  # fmt: skip
        elif (snap.template, snap.city) in keeps_all:
            verdicts[snap.location] = Verdict(snap, True, keeps_all[(snap.template, snap.city)])
        elif (snap.template, snap.city) not in policy:
            verdicts[snap.location] = Verdict(
                snap, True, f"no valid city or fallback parent {snap.dag} in the templates (removed, or its file "
                "does not load): nothing is deleted on a guess",
            )  # fmt: skip
        else:
            others.setdefault((snap.template, snap.city), []).append(snap)
    for (template, city), group in others.items():
        newest = sorted(group, key=lambda s: (s.written, s.run), reverse=True)
        limit = 0 if not template else policy[(template, city)]
        for rank, snap in enumerate(newest):
            if rank < limit:
                why = f"one of the newest {limit} unregistered snapshots of {snap.dag} (retention.keep_last)"
                verdicts[snap.location] = Verdict(snap, True, why)
                continue
            own = None if snap.refused else _manifest_uri(snap, storage_options)
            who = referenced.get(location_key(own)) if own else None
            if who:
                verdicts[snap.location] = Verdict(snap, True, f"registered (as {own}): {'; '.join(who)}")
            elif not template:
                verdicts[snap.location] = Verdict(snap, False, "old layout, not registered (--prune-old-layout)")
            else:
                what = f"a refused run (only {REFUSAL})" if snap.refused else "not registered"
                why = f"{what}, older than the newest {limit} of {snap.dag} (retention.keep_last)"
                verdicts[snap.location] = Verdict(snap, False, why)
    return [verdicts[s.location] for s in snapshots]


def delete_snapshots(verdicts: Iterable[Verdict], *, storage_options: StorageOptions | None = None) -> list[str]:
    """Delete the folders of the verdicts that do not keep their snapshot; returns their locations."""
    deleted = []
    for verdict in verdicts:
        if verdict.keep:
            continue
        location = verdict.snapshot.location
        fs, path = filesystem(location, storage_options)
        with storage_errors(location, storage_options):
            fs.rm(path, recursive=True)
        deleted.append(location)
    return deleted


def _manifest(location: str, storage_options: StorageOptions | None, name: str = MANIFEST) -> dict[str, Any]:
    """The JSON record ``name`` (the manifest by default) of the folder ``location``; empty when unreadable."""
    fs, path = filesystem(location, storage_options)
    with storage_errors(location, storage_options):
        try:
            data = json.loads(fs.cat_file(f"{path}/{name}"))
        except (FileNotFoundError, ValueError):
            return {}
    return data if isinstance(data, dict) else {}


def _manifest_uri(snap: StoredSnapshot, storage_options: StorageOptions | None) -> str | None:
    uri = _manifest(snap.location, storage_options).get("uri")
    return str(uri) if uri else None


def _created(location: str, name: str, storage_options: StorageOptions | None) -> float:
    """Record ``name``'s ``created_at`` in POSIX seconds; far in the future when unreadable, so it counts as newest."""
    try:
        return dt.datetime.fromisoformat(str(_manifest(location, storage_options, name)["created_at"])).timestamp()
    except (KeyError, ValueError):
        return float("inf")


def _modified(info: Mapping[str, Any]) -> float:
    """A listed file's modification time in POSIX seconds (local ``mtime``, S3 ``LastModified``)."""
    for key in ("mtime", "LastModified", "last_modified", "created"):
        value = info.get(key)
        if isinstance(value, dt.datetime):
            return value.timestamp()
        if isinstance(value, int | float):
            return float(value)
    return 0.0
