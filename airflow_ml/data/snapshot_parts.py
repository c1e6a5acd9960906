"""The partitioned kind of snapshot: a folder of part files, the manifest listing them, and its content hash.

A snapshot taken on a Dask cluster (:mod:`airflow_ml.data.dask_snapshot`) is never one frame in one process,
so it is not one ``data.parquet``: its rows are ``data/part.NNNNN.parquet`` files, one per source file that kept
rows, and its manifest says ``kind: partitioned`` and lists each part (``file``, ``rows``, ``hash``) in order.
Readers read exactly the listed parts, never whatever lies in the folder (an attempt cut short may have left
others).

Content hashes, by the manifest's ``hash_scheme``:

- ``rows-sha256`` (a one-file snapshot; manifests without the field): SHA-256 of the schema (column → dtype, as
  JSON) and of pandas' 64-bit hash of every row, over the whole frame (``row_hashing.content_hash``).
- ``parts-sha256``: each part's hash is ``rows-sha256`` of that part's rows, computed on the worker that wrote
  it; the snapshot's hash is SHA-256 of ``airflow-ml parts-sha256 v1`` then one ``<rows>:<part hash>`` line per
  part, in the manifest's order. No process ever holds more than one part. The same rows cut into other parts
  give another hash: the parts follow the source files, so the same source files give the same parts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

#: The manifest's ``kind`` of a one-file snapshot and of a partitioned one.
FILE_KIND, PARTITIONED_KIND = "file", "partitioned"
#: The manifest's ``hash_scheme`` of each kind (see the module's docstring).
ROWS_SCHEME, PARTS_SCHEME = "rows-sha256", "parts-sha256"
#: The folder of a partitioned snapshot's part files, inside the snapshot's folder.
PARTS_FOLDER = "data"
_PARTS_HEADER = b"airflow-ml parts-sha256 v1\n"


def part_name(index: int) -> str:
    """The path of part ``index`` inside the snapshot folder: ``data/part.00007.parquet`` (sorts as it is listed)."""
    return f"{PARTS_FOLDER}/part.{index:05d}.parquet"


def parts_hash(parts: Sequence[dict[str, Any]]) -> str:
    """The ``parts-sha256`` content hash of a snapshot from its parts' ``rows`` and ``hash``, in order."""
    digest = hashlib.sha256(_PARTS_HEADER)
    for part in parts:
        digest.update(f"{int(part['rows'])}:{part['hash']}\n".encode())
    return digest.hexdigest()


def check_kind(kind: str, scheme: str, where: str) -> None:
    """Refuse a manifest of a kind or hash scheme this version cannot read, naming the snapshot.

    Raises:
        ValueError: for an unknown ``kind`` or ``hash_scheme`` (a snapshot written by a newer airflow-ml).
    """
    known = {FILE_KIND: ROWS_SCHEME, PARTITIONED_KIND: PARTS_SCHEME}
    if known.get(kind) != scheme:
        raise ValueError(
            f"snapshot {where!r} is of kind {kind!r} with hash scheme {scheme!r}, which this airflow-ml cannot read "
            f"(it reads {', '.join(f'{k}/{s}' for k, s in known.items())}); upgrade airflow-ml or take the snapshot "
            "again"
        )
