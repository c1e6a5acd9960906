"""The record a run refused at its snapshot leaves where the snapshot would have been: ``refusal.json``.

A run whose first task refuses its data (the dataset contract), its conf, or its source (missing, empty,
unreadable) writes no snapshot, so without a record it would leave nothing behind: ``airflow-ml status`` would
show the previous run as the latest, and ``airflow-ml run`` could not say which window was asked. The record
holds when, which run, the window asked, the kind of refusal and the error's headline; no rows, no
``data.parquet`` and no ``manifest.json``, so nothing ever reads it as a snapshot. A folder that holds a
manifest is a snapshot and never gets a record (a retry that succeeded wins, and another DAG's folder is never
written into). Readers: :mod:`airflow_ml.cli.run_summary` (a failed run) and :mod:`airflow_ml.data.retention`
(a failed run's folder, prunable like any other unregistered one).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass
from typing import Any, Literal

from airflow_ml.data.snapshot import MANIFEST, snapshot_location, write_json
from airflow_ml.data.storage import StorageOptions, display, filesystem, is_local, storage_errors

REFUSAL = "refusal.json"
#: ``contract``: the data breaks the DAG's dataset contract; ``conf``: the run's conf was refused;
#: ``storage``: the source is missing, empty or unreadable, or the snapshot could not be written.
Kind = Literal["contract", "conf", "storage"]
_HEADLINE_MAX = 500


@dataclass(frozen=True)
class Refusal:
    """Why a run stopped at its snapshot, and which window it asked for."""

    template: str
    city: str
    run_id: str
    created_at: str
    kind: str
    #: The error's first line (with the first item of the list it introduces, when it ends with a colon).
    error: str
    window_start: str | None = None
    window_end: str | None = None
    window_days: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Refusal:
        """The inverse of :meth:`to_dict`; keys it does not know are ignored."""
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        return cls(**known)

    @property
    def reason(self) -> str:
        """The run's reason in one line: ``snapshot refused: <error>``."""
        return f"snapshot refused: {self.error}"

    @property
    def window(self) -> str:
        """The window the run asked for: ``first..last``, ``first..``, ``..last``, ``last N days`` or ``-``."""
        if self.window_start or self.window_end:
            start, end = self.window_start or "", self.window_end or ""
            return start if start == end else f"{start}..{end}"
        return f"last {self.window_days} days" if self.window_days else "-"


def headline(message: str) -> str:
    """The first line of an error; when it only introduces a list (ends with ``:``), with the list's first item."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    if not lines:
        return "(no message)"
    first = lines[0]
    if first.endswith(":") and len(lines) > 1:
        more = sum(line.startswith("- ") for line in lines[2:])
        first = f"{first} {lines[1].removeprefix('- ')}" + (f" (+{more} more)" if more else "")
    return first if len(first) <= _HEADLINE_MAX else first[: _HEADLINE_MAX - 3] + "..."


def record_refusal(
    snapshot_root: str,
    *,
    template: str,
    city: str,
    run_id: str,
    kind: Kind,
    message: str,
    window_start: Any = None,
    window_end: Any = None,
    window_days: int | None = None,
    storage_options: StorageOptions | None = None,
) -> str | None:
    """Write ``refusal.json`` where the run's snapshot would be; returns its location, or None when not written.

    Nothing is written into a folder that holds a manifest (a complete snapshot). Callers write it best effort:
    the error that refused the run is what the task must raise, whatever happens here.

    Args:
        snapshot_root: ``<data root>/snapshots``.
        template: The DAG's template.
        city: The DAG's city (or fallback parent).
        run_id: The Airflow run id.
        kind: What refused the run (see :data:`Kind`).
        message: The error's message; only its :func:`headline` is kept.
        window_start: The window's first day as the run asked it (a ``YYYY-MM-DD`` text or a date), if any.
        window_end: The window's last day as asked, if any.
        window_days: The template's ``window_days`` when the run asked for no dates.
        storage_options: fsspec options of the snapshot root's protocol.
    """
    uri = snapshot_location(snapshot_root, template, city, run_id)
    fs, folder = filesystem(uri, storage_options)
    with storage_errors(uri, storage_options):
        if fs.exists(f"{folder}/{MANIFEST}"):
            return None
        if is_local(fs):  # object stores have no folders to make
            fs.makedirs(folder, exist_ok=True)
    record = Refusal(
        template=template,
        city=city,
        run_id=run_id,
        created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        kind=kind,
        error=headline(message),
        window_start=_day(window_start),
        window_end=_day(window_end),
        window_days=window_days if not (window_start or window_end) else None,
    )
    write_json(uri, REFUSAL, record.to_dict(), storage_options=storage_options)
    return f"{display(fs, folder)}/{REFUSAL}"


def read_refusal(folder: str, *, storage_options: StorageOptions | None = None) -> Refusal | None:
    """The refusal record in ``folder``, or None when it has none (or one that cannot be read as such)."""
    fs, path = filesystem(folder, storage_options)
    try:
        with storage_errors(folder, storage_options):
            data = json.loads(fs.cat_file(f"{path}/{REFUSAL}"))
    except (FileNotFoundError, ValueError):
        return None
    try:
        return Refusal.from_dict(data) if isinstance(data, dict) else None
    except TypeError:  # a required field is missing
        return None


def _day(value: Any) -> str | None:
    """A window day as text (``YYYY-MM-DD``), kept as the run gave it; None when not given."""
    if value is None or value == "":
        return None
    return value.isoformat() if isinstance(value, dt.date) else str(value)[:40]
