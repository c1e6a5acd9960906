"""The drift benchmark's world (see ``benchmarks/drift.py``): a fleet's drift histories under no drift, written
with the project's own writers, and the same numbers kept for the plain-numpy reference (``fleet.npz``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from pathlib import Path
from typing import Any

TEMPLATE = "ride_duration"
FIRST_NIGHT = dt.datetime(2026, 3, 1, 2, 0, tzinfo=dt.UTC)
#: Bins of a numeric feature's PSI and categories of a categorical one's JS distance.
BINS, CATEGORIES, MISSING_RATE = 10, 5, 0.02


def _tests(features: int) -> list[tuple[str, str, str]]:
    """(column, kind, statistic) of every test of a city."""
    out = []
    for j in range(features):
        kind = "categorical" if j % 4 == 3 else "numeric"
        out.append((f"f{j:02d}", kind, "js_distance" if kind == "categorical" else "psi"))
        out.append((f"f{j:02d}", kind, "missing_rate_change"))
    return out


def _draw(rng: Any, tests: list[tuple[str, str, str]], days: int) -> tuple[Any, Any, Any]:
    """One city's statistics under no drift: values, reference and current counts, (tests, days)."""
    import numpy as np

    per_night = math.exp(rng.uniform(math.log(200), math.log(200_000)))
    nights = rng.choice([1, 1, 1, 1, 1, 2, 3], size=days)  # catch-up nights compare two or three days
    rows_now = np.maximum(1, np.round(per_night * nights * rng.uniform(0.8, 1.2, size=days)))
    rows_ref = np.maximum(1, np.round(per_night * 30 * rng.uniform(0.9, 1.1, size=days)))
    values = np.empty((len(tests), days))
    ref_n = np.empty((len(tests), days))
    cur_n = np.empty((len(tests), days))
    for t, (_, _, statistic) in enumerate(tests):
        spread = rng.uniform(1.0, 3.0)  # the city's own dispersion (rows not independent), which history measures
        if statistic == "missing_rate_change":
            n1, n2 = rows_ref, rows_now
            n_eff = n1 * n2 / (n1 + n2)
            value = np.sqrt(MISSING_RATE * (1 - MISSING_RATE) * spread * rng.chisquare(1, days) / n_eff)
        else:
            n1, n2 = np.round(rows_ref * (1 - MISSING_RATE)), np.round(rows_now * (1 - MISSING_RATE))
            n_eff = n1 * n2 / (n1 + n2)
            if statistic == "psi":
                value = spread * rng.chisquare(BINS - 1, days) / n_eff
            else:
                value = np.sqrt(spread * rng.chisquare(CATEGORIES - 1, days) / (8 * math.log(2) * n_eff))
        values[t], ref_n[t], cur_n[t] = value, n1, n2
    return values, ref_n, cur_n


def prepare(world: Path, cities: int, features: int, days: int, seed: int) -> dict[str, Any]:
    """Write the fleet's histories with the project's own writers; keep the same numbers for the reference."""
    import numpy as np

    from airflow_ml.data.snapshot import write_json
    from airflow_ml.ml import drift_history as store
    from airflow_ml.ml.drift_calibration import CalibrationRules, calibrate, with_fleet
    from airflow_ml.ml.steps.xcom_payloads import DRIFT_FILE

    root = str(world / "data")
    tests = _tests(features)
    # The default min_history (20) unless the history is too short for it (tiny test sizes).
    rules = CalibrationRules(min_history=min(20, days - 2))
    names = [f"city_{i:04d}" for i in range(cities)]
    all_values, all_ref, all_cur = [], [], []
    for i, city in enumerate(names):
        values, ref_n, cur_n = _draw(np.random.default_rng([seed, i]), tests, days)
        all_values.append(values)
        all_ref.append(ref_n)
        all_cur.append(cur_n)
        uri = store.history_uri(root, TEMPLATE, city)
        nights = [_night(root, city, d) for d in range(days)]
        earlier = [
            {
                **nights[d],
                "column": column,
                "kind": kind,
                "statistic": statistic,
                **(
                    {
                        "value": float(values[t, d]),
                        "reference_n": int(ref_n[t, d]),
                        "current_n": int(cur_n[t, d]),
                        "overlap_n": 0,  # independent draws: the two sides share no row
                        "compare_mode": "new_rows",
                    }
                    if d
                    else {}  # the first snapshot: nothing to compare with
                ),
            }
            for d in range(days - 1)
            for t, (column, kind, statistic) in enumerate(tests)
        ]
        store.write_rows(uri, earlier, nights[days - 2]["snapshot_hash"])
        newest = nights[-1]
        past = store.before(store.read_history(uri), newest["snapshot_hash"])
        today = [
            {
                "column": column,
                "kind": kind,
                "statistic": statistic,
                "value": float(values[t, -1]),
                "reference_n": int(ref_n[t, -1]),
                "current_n": int(cur_n[t, -1]),
                "overlap_n": 0,
            }
            for t, (column, kind, statistic) in enumerate(tests)
        ]
        entries = with_fleet(calibrate(today, past, rules, season=newest["season"]), [])
        rows = [{**newest, **{k: e.get(k) for k in store.COLUMNS if k in e}} for e in entries]
        store.write_rows(uri, rows, newest["snapshot_hash"])
        snapshot = newest["snapshot_uri"]
        Path(snapshot).mkdir(parents=True, exist_ok=True)
        write_json(snapshot, DRIFT_FILE, {"status": "passed", "checks": [], "calibration": {"columns": entries}})
    np.savez(world / "fleet.npz", values=np.stack(all_values), ref_n=np.stack(all_ref), cur_n=np.stack(all_cur))
    meta = {
        "root": root,
        "cities": names,
        "tests": tests,
        "days": days,
        "min_history": rules.min_history,
        "now": (FIRST_NIGHT + dt.timedelta(days=days - 1, hours=4)).isoformat(),
    }
    (world / "world.json").write_text(json.dumps(meta), encoding="utf-8")
    return meta


def _night(root: str, city: str, day: int) -> dict[str, Any]:
    """The keys a drift run gives each row of its night (``RunCalibration.base["row"]``)."""
    when = FIRST_NIGHT + dt.timedelta(days=day)
    digest = hashlib.sha256(f"{city}/{day}".encode()).hexdigest()
    previous = hashlib.sha256(f"{city}/{day - 1}".encode()).hexdigest() if day else None
    return {
        "snapshot_hash": digest,
        "snapshot_uri": f"{root}/snapshots/{TEMPLATE}/{city}/night-{day:03d}",
        "recorded_at": when.isoformat(),
        "season": f"{when.month:02d}",
        "previous_hash": previous,
    }
