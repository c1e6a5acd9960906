"""The dataset contract in a real DAG run (dag.test(), real GX, LightGBM and MLflow) on demo data with faults.

A feature the data lacks used to pass lint and validation and fail in ``train`` with ``ArrowInvalid: No match
for FieldRef``; now the snapshot task fails at once, for good (no retry), and leaves no snapshot, only its
refusal record. Null targets, which real data has, are dropped by a row filter the template declares, and the
run's summary shows how many.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.airflow_runs import task_states, try_numbers
from tests.support.worlds import city_world

pytestmark = pytest.mark.integration
CITY = "lisbon"


def _rewrite_partitions(data_root: Path, change: object) -> int:
    """Apply ``change`` to every demo partition file of the city; return the rows it now holds."""
    import pandas as pd

    rows = 0
    for index, path in enumerate(sorted((data_root / "raw" / "trips" / CITY).glob("date=*/*.parquet"))):
        frame = change(pd.read_parquet(path), index)  # type: ignore[operator]
        path.unlink()
        frame.to_parquet(path, index=False)
        rows += len(frame)
    return rows


def test_a_feature_missing_from_the_data_stops_the_run_at_the_snapshot_for_good(
    tmp_path: Path, airflow_db: Path, dags_dir: Path
) -> None:
    # The city's template names a feature the data does not have and the suite does not check: it used to
    # pass lint and validation and fail in train with "ArrowInvalid: No match for FieldRef.Name(rain_mm)".
    features = "[distance_km, pickup_hour, weekday, pickup_zone, temperature_c, is_raining, rain_mm]"
    with city_world(
        tmp_path, dags_dir, CITY, extra=f"dataset:\n  features: {features}\n", template="contract"
    ) as world:
        city_file = tmp_path / "cities" / f"{CITY}.yaml"
        # Retries on, without delay: a retryable failure would run the snapshot task twice.
        city_file.write_text(
            city_file.read_text(encoding="utf-8").replace("retries: 0", "retries: 1\n  retry_delay_minutes: 0"),
            encoding="utf-8",
        )

        run = world["build"]().test()

        states = task_states(f"contract.{CITY}", run.run_id)
        assert str(run.state) == "failed"
        assert states["snapshot"] == "failed"
        assert try_numbers(f"contract.{CITY}", run.run_id)["snapshot"] == 1
        assert {states[t] for t in ("validate", "train", "register", "gate")} == {"upstream_failed"}
        # No snapshot: only the refusal record where it would be, for `airflow-ml status` (data.refusal).
        left = [p for p in (world["data_root"] / "snapshots").rglob("*") if p.is_file()]
        assert [p.name for p in left] == ["refusal.json"]
        refused = json.loads(left[0].read_text(encoding="utf-8"))
        assert (refused["kind"], refused["run_id"]) == ("contract", run.run_id)
        assert "column 'rain_mm' is not in the data" in refused["error"]
        assert world["client"].search_registered_models() == []


def test_a_row_filter_drops_null_targets_and_the_summary_counts_them(
    tmp_path: Path, airflow_db: Path, dags_dir: Path
) -> None:
    from airflow_ml.cli.demo_run import summarize
    from airflow_ml.data.snapshot import MANIFEST, snapshot_location

    extra = "dataset:\n  filters:\n    - {column: duration_min, op: not_null}\n"
    with city_world(tmp_path, dags_dir, CITY, extra=extra, template="contract") as world:
        # Real data: some trips' outcome was never observed. The suite requires a non-null target.
        rows = _rewrite_partitions(
            world["data_root"], lambda f, i: f.assign(duration_min=f["duration_min"].where(f.index % 25 != i % 25))
        )
        import pandas as pd

        raw = pd.concat(pd.read_parquet(p) for p in (world["data_root"] / "raw" / "trips" / CITY).rglob("*.parquet"))
        nulls = int(raw["duration_min"].isna().sum())
        assert 0 < nulls < rows

        run = world["build"]().test()

        assert str(run.state) == "success"
        folder = Path(snapshot_location(str(world["data_root"] / "snapshots"), "contract", CITY, run.run_id))
        manifest = (folder / MANIFEST).read_text(encoding="utf-8")
        assert f'"dropped": {nulls}' in manifest
        summary = summarize(str(world["data_root"]), "contract", CITY, run.run_id, "initial", str(run.state))
        assert summary.rows == f"{rows - nulls:,} (-{nulls:,} filtered)"
        assert summary.validation == "passed"
