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


#: Cities per shard file. A shard file builds and serializes each city's retraining and scoring DAGs: 6.5 to 14 ms
#: per city on a quiet 2-core machine (two machines of this project, benchmarks/parse.py), more on a loaded one
#: (docs/production/scaling.md says how it was measured). 500 cities keep a file near 7 s on the slower quiet
#: machine, inside the 10 s goal (750 took it to 10.2 s), and under Airflow's 30 s per-file timeout when loaded.
CITIES_PER_SHARD = 500


def shard_count(cities: int) -> int:
    """How many shard files a fleet of ``cities`` needs: one per :data:`CITIES_PER_SHARD`, at least 2.

    Two is the floor because the DAG processor runs two parsing processes by default
    (``[dag_processor] parsing_processes``): two files share them even for a small fleet.
    """
    return max(2, -(-cities // CITIES_PER_SHARD))


def shard_budget_warning(shard: Shard, cities: int) -> str | None:
    """What to say when ``shard`` holds more than :data:`CITIES_PER_SHARD` city files, else None.

    Then the fleet (about ``cities`` times the count, as the hash spreads the cities evenly) needs more shard files
    than it has by :func:`shard_count`, the rule docs/production/scaling.md gives: past 1,000 cities for the two
    shipped files. The warning says so before the parse nears Airflow's per-file timeout.
    """
    if (fleet := _fleet_past(shard, cities, CITIES_PER_SHARD)) is None:
        return None
    return (
        f"shard {shard.index} of {shard.count} holds {cities} city files, more than {CITIES_PER_SHARD}: about "
        f"{fleet} cities need {shard_count(fleet)} shard files, each naming that count, to keep each file's parse "
        "inside its budget (docs/production/scaling.md, 'Shard files')"
    )


#: City files per report file (``dags/retrain_errors.py``). A report loads and validates each of its city files and
#: builds their schedules and task settings, not their operators: 0.8 to 1.2 ms per city on a quiet 2-core machine
#: (benchmarks/README.md), against 6.5 to 14 ms in a shard file, so one report file holds eight shard files' cities.
#: 4,000 keep it near 5 s on the slower machine (4.8 s at 1.2 ms), half the 10 s goal: room for a loaded machine and
#: for the model-name pass when the templates make a clash possible (``templates/model_claims.py``).
CITIES_PER_REPORT = 4000


def report_count(cities: int) -> int:
    """How many report files (``retrain_errors_<i>.py``) a fleet of ``cities`` needs: one per :data:`CITIES_PER_REPORT`.

    One, the shipped ``dags/retrain_errors.py``, up to 4,000 cities; docs/production/scaling.md says how to split it.
    """
    return max(1, -(-cities // CITIES_PER_REPORT))


def report_budget_warning(shard: Shard, cities: int) -> str | None:
    """What to say when the report file of ``shard`` reads more than :data:`CITIES_PER_REPORT` city files, else None."""
    if (fleet := _fleet_past(shard, cities, CITIES_PER_REPORT)) is None:
        return None
    return (
        f"the report of broken city files (shard {shard.index} of {shard.count}) reads {cities} city files, more "
        f"than {CITIES_PER_REPORT}: about {fleet} cities need {report_count(fleet)} report files, "
        "retrain_errors_<i>.py each calling report_broken_cities(..., shard=Shard(i, count)), to keep each file's "
        "parse inside its budget (docs/production/scaling.md, 'Shard files')"
    )


def _fleet_past(shard: Shard, cities: int, limit: int) -> int | None:
    """About how many cities the fleet holds when a file of ``shard`` reads more than ``limit``, else None."""
    return None if cities <= limit else cities * shard.count  # the hash spreads the cities evenly
