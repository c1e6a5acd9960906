"""Which drift p-values are adjusted together: one definition for a city's run and for the nightly review.

The family of a template is, per city that is a **member** and whose newest drift record is **recent enough**,
the p-values of that newest snapshot (one per column and statistic, those with a p-value). A city's run
adjusts its own p-values with the other members' (its own newest rows are what it is writing); the nightly
review adjusts every member's. Fed the same records and the same members, both give every test the same
q-value; a run sees only the records written before it, and members as of the last review plus the cities new
since (below), so its q-values may differ from the review's that night.

- **Members**: the cities the review found configured with drift and calibration on (a city removed from
  the templates, or whose drift or calibration is off, is not one). The review writes them to
  ``<data_root>/drift_history/<template>/family.json`` each night; a run reads that list, always counts
  itself, and also counts a city not listed whose newest record is newer than the list (a city added, or
  whose calibration was turned on, since the review: only a configured city writes records), named in the
  record (``joined_since_review``). A run does not read the templates (the drift task has its own city's
  settings only), so a city removed since the review stays a member until the next review, and its records
  age out after ``max_age_days``. Before any review has run, every city with a history is a member
  (``source: no_review_yet``). A list older than its ``max_age_days`` (a paused or failing review) is treated
  as absent (``source: review_stale``), and one that cannot be read as well (``source: unreadable``, with the
  error in ``note`` and a warning in the log): every city with a history is then a member.
- **Recent enough**: recorded at most ``max_age_days`` before now (``drift.calibration.max_age_days``; the
  review writes the largest of its cities' values into ``family.json`` so that every run uses the same). A
  city that stopped running leaves the family instead of adding its last p-values forever.

The ``latest/`` files of the cities left out stay where they are (a city whose file is broken tonight is back
tomorrow); they are never read into the family.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_ml.data.snapshot import write_json
from airflow_ml.data.storage import StorageOptions, filesystem, storage_errors
from airflow_ml.ml.drift_history import ensure_folder, history_folder

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

FAMILY_FILE = "family.json"
_KEY = ["city", "column", "statistic"]
#: The columns of ``fleet_latest``'s rows that :class:`Family` reads.
COLUMNS = (*_KEY, "p_value", "recorded_at")


@dataclass(frozen=True)
class Family:
    """The cities whose newest p-values are adjusted together, and how recent their records must be.

    Attributes:
        members: The member cities; None: every city with a history (no usable list of the review).
        max_age_days: The oldest newest-record that still counts, in days.
        source: ``review`` (the list the nightly review wrote), ``no_review_yet``, ``review_stale`` (a list
            older than its ``max_age_days``) or ``unreadable``.
        listed_at: When the review listed the members (None without a review).
        note: Why the review's list was not used (stale, unreadable), else empty.
    """

    members: tuple[str, ...] | None
    max_age_days: int
    source: str
    listed_at: str | None = None
    note: str = ""

    def _member(self, fleet: pd.DataFrame, recorded: pd.Series) -> pd.Series:
        """Per row: its city is listed, or new since the list (its newest record is newer than the list)."""
        import pandas as pd

        if self.members is None:
            return pd.Series(True, index=fleet.index)
        listed = fleet["city"].isin(list(self.members))
        since = pd.to_datetime(self.listed_at, utc=True, errors="coerce", format="ISO8601") if self.listed_at else None
        if since is None or pd.isna(since):
            return listed
        newest = recorded.groupby(fleet["city"]).transform("max")
        return listed | (newest > since)

    def joined(self, fleet: pd.DataFrame) -> list[str]:
        """The cities of ``fleet`` counted as members though the review's list lacks them (new since it)."""
        import pandas as pd

        if fleet.empty or self.members is None:
            return []
        recorded = pd.to_datetime(fleet["recorded_at"], utc=True, errors="coerce", format="ISO8601")
        member = self._member(fleet, recorded)
        return sorted(set(fleet.loc[member & ~fleet["city"].isin(list(self.members)), "city"].astype(str)))

    def tests(self, fleet: pd.DataFrame, *, now: dt.datetime) -> pd.DataFrame:
        """The rows of ``fleet`` (``fleet_latest``'s newest rows per city) in the family, by city, column, statistic.

        A city's rows count when it is a member (or new since the review's list) and its newest record is at most
        ``max_age_days`` old.
        """
        import pandas as pd

        if fleet.empty:
            return fleet
        recorded = pd.to_datetime(fleet["recorded_at"], utc=True, errors="coerce", format="ISO8601")
        kept = fleet["p_value"].notna() & (recorded >= _utc(now) - dt.timedelta(days=self.max_age_days))
        kept &= self._member(fleet, recorded)
        return fleet[kept].sort_values(_KEY, kind="stable").reset_index(drop=True)

    def left_out(self, fleet: pd.DataFrame, *, now: dt.datetime) -> dict[str, str]:
        """Per city of ``fleet`` outside the family, why (not a member, or its newest record too old)."""
        import pandas as pd

        out: dict[str, str] = {}
        limit = _utc(now) - dt.timedelta(days=self.max_age_days)
        joined = set(self.joined(fleet))
        # Parsed once for the fleet, not once per city (a third of a 1,000-city review's own work).
        recorded = pd.to_datetime(fleet["recorded_at"], utc=True, errors="coerce", format="ISO8601")
        newest_by_city = recorded.groupby(fleet["city"], sort=True).max()
        for city, newest in newest_by_city.items():
            if self.members is not None and city not in self.members and city not in joined:
                out[str(city)] = "not a reviewed city of the template (removed, or its drift calibration is off)"
            elif pd.isna(newest) or newest < limit:
                written = fleet.loc[fleet["city"] == city, "recorded_at"].max()
                out[str(city)] = (
                    f"newest drift record {written} is older than drift.calibration.max_age_days {self.max_age_days}"
                )
        return out

    def to_dict(self, fleet: pd.DataFrame | None = None) -> dict[str, Any]:
        """The record's ``calibration.fleet.family``: source, member count, the age limit, when listed, why the
        list was not used (``note``) and, given the ``fleet``, the cities new since the list."""
        return {
            "source": self.source,
            "members": None if self.members is None else len(self.members),
            "max_age_days": self.max_age_days,
            "listed_at": self.listed_at,
            "note": self.note,
            "joined_since_review": [] if fleet is None else self.joined(fleet),
        }


def _utc(moment: dt.datetime) -> pd.Timestamp:
    import pandas as pd

    stamp = pd.Timestamp(moment)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def family_uri(data_root: str, template: str) -> str:
    """``<data_root>/drift_history/<template>/family.json``."""
    return f"{history_folder(data_root, template)}/{FAMILY_FILE}"


def read_family(
    data_root: str,
    template: str,
    *,
    max_age_days: int,
    now: dt.datetime | None = None,
    storage_options: StorageOptions | None = None,
) -> Family:
    """The family the newest review listed; without a usable list, every city and ``max_age_days``.

    A list older than its own ``max_age_days`` at ``now`` (default: the clock) is stale, and one that cannot be
    read is said in the family's ``note`` and the log: neither stops a run, and neither poses as no review.
    """
    import pandas as pd

    uri = family_uri(data_root, template)
    fs, path = filesystem(uri, storage_options)
    try:
        with storage_errors(uri, storage_options):
            listed = json.loads(fs.cat_file(path)) if fs.exists(path) else None
        if listed is None:
            return Family(members=None, max_age_days=max_age_days, source="no_review_yet")
        family = Family(
            members=tuple(str(c) for c in listed["cities"]),
            max_age_days=int(listed["max_age_days"]),
            source="review",
            listed_at=str(listed["listed_at"]),
        )
        listed_at = pd.Timestamp(family.listed_at)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        note = f"{uri} is unreadable ({type(exc).__name__}: {exc}); every city with a history counts"
        log.warning("drift family: %s; the next review rewrites it, check the store if it stays so", note)
        return Family(members=None, max_age_days=max_age_days, source="unreadable", note=note)
    age = _utc(now or dt.datetime.now(dt.UTC)) - _utc(listed_at.to_pydatetime())
    if age > dt.timedelta(days=family.max_age_days):
        note = (
            f"{uri} was listed at {family.listed_at}, more than its max_age_days {family.max_age_days} ago (is the "
            "drift review DAG paused or failing?); every city with a history counts"
        )
        log.warning("drift family: %s", note)
        return Family(members=None, max_age_days=max_age_days, source="review_stale", note=note)
    return family


def write_family(
    data_root: str,
    template: str,
    members: Collection[str],
    *,
    max_age_days: int,
    listed_at: str,
    storage_options: StorageOptions | None = None,
) -> Family:
    """Write the family the runs will use until the next review; returns it."""
    folder = history_folder(data_root, template)
    ensure_folder(folder, storage_options=storage_options)
    cities = sorted(members)
    payload = {"cities": cities, "max_age_days": max_age_days, "listed_at": listed_at}
    write_json(folder, FAMILY_FILE, payload, storage_options=storage_options)
    return Family(members=tuple(cities), max_age_days=max_age_days, source="review", listed_at=listed_at)
