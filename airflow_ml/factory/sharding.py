"""Split a fleet's cities across several DAG files, so that Airflow's parsing processes share the work.

Airflow parses each DAG file in one process, under a per-file timeout. A single file that builds a thousand
DAGs is slow to refresh and one timeout away from hiding every city; ``count`` small files that each build
the cities of their shard are parsed in parallel (``[dag_processor] parsing_processes``) and each stays
well inside the budget. A city's shard depends only on its id, so it never moves while the count stays.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count``: the cities whose stable hash modulo ``count`` is ``index``."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(f"Shard(index={self.index}, count={self.count}): need 0 <= index < count")

    def holds(self, city: str) -> bool:
        """Whether this shard builds ``city``'s DAGs (CRC-32 of the id: the same in every process)."""
        return zlib.crc32(city.encode("utf-8")) % self.count == self.index
