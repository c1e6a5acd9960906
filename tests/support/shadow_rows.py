"""Simulated joined live rows of a champion and a challenger in shadow, for the live comparison's tests."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

#: The slice column's values.
ZONES = ("alfama", "baixa", "belem")


def live_rows(
    seed: int,
    *,
    days: int = 14,
    per_day: int = 150,
    champion_sd: float = 4.0,
    challenger_sd: float | None = 4.0,
    worse_zone: str | None = None,
) -> pd.DataFrame:
    """Joined live rows of ``days`` days (from 2026-11-01), ``per_day`` rows each, with a fixed ``seed``.

    Columns: ``prediction_id``, ``day``, ``label``, ``champion``, ``challenger``, ``zone``. Both models' errors
    share the day's error (so rows within a day correlate) plus their own noise of ``champion_sd`` and
    ``challenger_sd``; ``challenger_sd`` None makes the challenger's predictions the champion's own, and
    ``worse_zone`` adds 4 to the challenger's predictions in that zone.
    """
    rng = np.random.default_rng(seed)
    frames = []
    for day in range(days):
        label = rng.gamma(4.0, 5.0, per_day)
        shared = rng.normal(0, 2.0)  # the day's error, common to both models
        zone = rng.choice(ZONES, per_day)
        champion = label + shared + rng.normal(0, champion_sd, per_day)
        if challenger_sd is None:
            challenger = champion.copy()
        else:
            challenger = label + shared + rng.normal(0, challenger_sd, per_day)
        if worse_zone is not None:
            challenger[zone == worse_zone] += 4.0
        frames.append(
            pd.DataFrame(
                {
                    "prediction_id": [f"{seed}-{day}-{i}" for i in range(per_day)],
                    "day": (dt.date(2026, 11, 1) + dt.timedelta(days=day)).isoformat(),
                    "label": label,
                    "champion": champion,
                    "challenger": challenger,
                    "zone": zone,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)
