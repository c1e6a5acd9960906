"""Which drift p-values are adjusted together: one definition for a city's run and for the nightly review.

The family of a template is, per city that is a **member** and whose newest drift record is **recent enough**,
the p-values of that newest snapshot (one per column and statistic, those with a p-value). A city's run
adjusts its own p-values with the other members' (its own newest rows are what it is writing); the nightly
review adjusts every member's. Fed the same records, both give every test the same q-value.

- **Members**: the cities the review found configured with drift and calibration on (a city removed from
  the templates, or whose drift or calibration is off, is not one). The review writes them to
  ``<data_root>/drift_history/<template>/family.json`` each night; a run reads that list, and always counts
  itself. Before any review has run, every city with a history is a member, and the record says so
  (``source: no_review_yet``).
- **Recent enough**: recorded at most ``max_age_days`` before now (``drift.calibration.max_age_days``; the
  review writes the largest of its cities' values into ``family.json`` so that every run uses the same). A
  city that stopped running leaves the family instead of adding its last p-values forever.

The ``latest/`` files of the cities left out stay where they are (a city whose file is broken tonight is back
tomorrow); they are never read into the family.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_ml.data.snapshot import write_json
from airflow_ml.data.storage import StorageOptions, filesystem, storage_errors
from airflow_ml.ml.drift_history import ensure_folder, history_folder

if TYPE_CHECKING:
    import pandas as pd

FAMILY_FILE = "family.json"
#: How old a city's newest drift record may be and still count (``drift.calibration.max_age_days``).
DEFAULT_MAX_AGE_DAYS = 45
_KEY = ["city", "column", "statistic"]


@dataclass(frozen=True)
class Family:
    """The cities whose newest p-values are adjusted together, and how recent their records must be.

    Attributes:
        members: The member cities; None: every city with a history (no review has listed them yet).
        max_age_days: The oldest newest-record that still counts, in days.
        source: ``review`` (the list the nightly review wrote) or ``no_review_yet``.
        listed_at: When the review listed the members (None without a review).
    """

    members: tuple[str, ...] | None
    max_age_days: int
    source: str
    listed_at: str | None = None

    def tests(self, fleet: pd.DataFrame, *, now: dt.datetime) -> pd.DataFrame:
        """The rows of ``fleet`` (``fleet_latest``'s newest rows per city) in the family, by city, column, statistic.

        A city's rows count when it is a member and its newest record is at most ``max_age_days`` old.
        """
        import pandas as pd

        if fleet.empty:
            return fleet
        recorded = pd.to_datetime(fleet["recorded_at"], utc=True, errors="coerce", format="ISO8601")
        kept = fleet["p_value"].notna() & (recorded >= _utc(now) - dt.timedelta(days=self.max_age_days))
        if self.members is not None:
            kept &= fleet["city"].isin(list(self.members))
        return fleet[kept].sort_values(_KEY, kind="stable").reset_index(drop=True)

    def left_out(self, fleet: pd.DataFrame, *, now: dt.datetime) -> dict[str, str]:
        """Per city of ``fleet`` outside the family, why (not a member, or its newest record too old)."""
        import pandas as pd

        out: dict[str, str] = {}
        limit = _utc(now) - dt.timedelta(days=self.max_age_days)
        # Parsed once for the fleet, not once per city (a third of a 1,000-city review's own work).
        recorded = pd.to_datetime(fleet["recorded_at"], utc=True, errors="coerce", format="ISO8601")
        newest_by_city = recorded.groupby(fleet["city"], sort=True).max()
        for city, newest in newest_by_city.items():
            if self.members is not None and city not in self.members:
                out[str(city)] = "not a reviewed city of the template (removed, or its drift calibration is off)"
            elif pd.isna(newest) or newest < limit:
                written = fleet.loc[fleet["city"] == city, "recorded_at"].max()
                out[str(city)] = (
                    f"newest drift record {written} is older than drift.calibration.max_age_days {self.max_age_days}"
                )
        return out

    def to_dict(self) -> dict[str, Any]:
        """The record's ``calibration.fleet.family``: source, member count, the age limit, when listed."""
        return {
            "source": self.source,
            "members": None if self.members is None else len(self.members),
            "max_age_days": self.max_age_days,
            "listed_at": self.listed_at,
        }


def _utc(moment: dt.datetime) -> pd.Timestamp:
    import pandas as pd

    stamp = pd.Timestamp(moment)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def family_uri(data_root: str, template: str) -> str:
    """``<data_root>/drift_history/<template>/family.json``."""
    return f"{history_folder(data_root, template)}/{FAMILY_FILE}"


def read_family(
    data_root: str, template: str, *, max_age_days: int, storage_options: StorageOptions | None = None
) -> Family:
    """The family the newest review listed; without one (or unreadable), every city and ``max_age_days``."""
    uri = family_uri(data_root, template)
    fs, path = filesystem(uri, storage_options)
    try:
        with storage_errors(uri, storage_options):
            listed = json.loads(fs.cat_file(path)) if fs.exists(path) else None
        if listed is not None:
            return Family(
                members=tuple(str(c) for c in listed["cities"]),
                max_age_days=int(listed["max_age_days"]),
                source="review",
                listed_at=str(listed.get("listed_at")),
            )
    except (OSError, ValueError, KeyError, TypeError):
        pass  # a broken list must not stop a run: every city counts, as before any review
    return Family(members=None, max_age_days=max_age_days, source="no_review_yet")


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
