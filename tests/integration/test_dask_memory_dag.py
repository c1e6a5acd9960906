"""The whole retraining DAG with ``training.engine: dask`` (real Airflow dag.test(), GX, LightGBM, MLflow) on a real
two-process ``distributed.LocalCluster`` whose workers could not each hold the snapshot's frame: snapshot,
validation, drift, training, registration, the gate and the health check complete (issue 17).

How the sizes are set, and why they show it: the workers are first warmed up (every module and cache the tasks use
on a worker is loaded, a small snapshot, validation and LightGBM run: :func:`warm_up_pipeline`) and their resident
size measured; each worker's memory limit is then set so that its room, between that idle size and the 95% at
which its nanny kills it (spilling and pausing are off), is below the whole frame and the two rooms together above
it. Same process ids at the end, and each worker's peak resident size (VmHWM) under the kill threshold, show that
no worker needed the frame. The frame is the demo trips plus 40 telemetry columns the model does not read, as a
raw table has: the snapshot and the validation handle every column, training, the gate and the health check only
the columns they read (the sizes printed say how much).

Measured on the 2-core machine under load (2026-11-30): frame 173 MiB (427,197 rows; 30 MiB of it read by
training, the gate and the health check), worker idle 382 MiB, limit 548 MiB (room 139 MiB), worker peaks 479 MiB
each (97 MiB over idle, most of it while LightGBM trains: about three times the 15 MiB of read columns a worker
holds), the run 43 s, the test 67 s.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.support.airflow_runs import task_states
from tests.support.dask_clusters import dask_city
from tests.support.partition_clusters import MIB, limit_memory, local_cluster, peak_rss, pid, warm_up_pipeline
from tests.support.worlds import city_world

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # a Dask cluster per test: make test-slow
CITY = "berlin"
MODEL = f"ride_duration.{CITY}"
DASK = dask_city("dask_memory", rounds=30)
#: The demo trips' scale (about 43,000 rows a scale unit over the 60 days) and the unread columns added to them.
SCALE, TELEMETRY = 6, 40
#: Each worker's room (from its idle size to the kill threshold), as a share of the whole frame.
ROOM = 0.8


def with_telemetry(data_root: Path) -> pd.DataFrame:
    """Add the telemetry columns to every raw file of the city; return the whole frame, as one process reads it."""
    rng = np.random.default_rng(3)
    frames = []
    for path in sorted((data_root / "raw" / "trips" / CITY).glob("date=*/*.parquet")):
        rows = pd.read_parquet(path)
        extra = rng.normal(size=(len(rows), TELEMETRY))
        rows = rows.assign(**{f"telemetry_{i:02d}": extra[:, i] for i in range(TELEMETRY)})
        rows.to_parquet(path, index=False)
        frames.append(rows)
    return pd.concat(frames, ignore_index=True)


def test_the_whole_dag_completes_on_workers_that_could_not_hold_the_frame(
    tmp_path: Path, airflow_db: Path, dags_dir: Path
) -> None:
    from airflow_ml.data.snapshot import load_manifest, snapshot_location

    with (
        local_cluster(workers=2, memory_limit="4GiB") as client,
        pytest.MonkeyPatch.context() as mp,
    ):
        address = json.dumps({"conn_type": "dask", "host": client.scheduler.address})
        mp.setenv("AIRFLOW_CONN_DASK_MEMORY", address)
        with city_world(tmp_path, dags_dir, CITY, extra=DASK, scale=SCALE) as world:
            frame = with_telemetry(world["data_root"])
            frame_bytes = int(frame.memory_usage(deep=True).sum())
            read_bytes = int(
                frame.drop(columns=["trip_id", *frame.filter(like="telemetry_")]).memory_usage(deep=True).sum()
            )
            rows = len(frame)
            del frame
            idles = client.run(warm_up_pipeline)
            idle = max(idles.values())
            limit = int((idle + ROOM * frame_bytes) / 0.95)
            room = 0.95 * limit - idle
            limit_memory(client, limit)
            pids = client.run(pid)
            started = dt.datetime.now()

            run = world["build"]().test()

            took = (dt.datetime.now() - started).total_seconds()
            states = task_states(MODEL, run.run_id)
            peaks = client.run(peak_rss)
            restarted = client.run(pid) != pids  # a worker killed and restarted by its nanny
            folder = snapshot_location(str(world["data_root"] / "snapshots"), "ride_duration", CITY, run.run_id)
            manifest = load_manifest(folder)
            validation = json.loads(Path(folder, "validation.json").read_text(encoding="utf-8"))
            decision = json.loads(Path(folder, "decision.json").read_text(encoding="utf-8"))
            health = json.loads(Path(folder, "health.json").read_text(encoding="utf-8"))
            champion = world["client"].get_model_version_by_alias(MODEL, "champion")
            params = world["client"].get_run(champion.run_id).data.params

    print(
        f"\nframe {frame_bytes / MIB:.0f} MiB in memory ({rows} rows, {TELEMETRY} telemetry columns; training, the "
        f"gate and the health check read {read_bytes / MIB:.0f} MiB of it); worker idle "
        f"{[round(i / MIB) for i in idles.values()]} MiB, limit {limit / MIB:.0f} MiB (room {room / MIB:.0f} MiB to "
        f"the kill threshold); worker peaks {[round(p / MIB) for p in peaks.values()]} MiB; the run took {took:.0f} s"
    )
    assert not restarted, states
    assert str(run.state) == "success", states
    assert states == {**dict.fromkeys(states, "success"), "approve": "skipped"}, states  # the gate asked nobody
    assert manifest.kind == "partitioned"
    assert manifest.row_count == rows
    assert any("validated on Dask in" in note for note in validation["notes"])
    assert params["engine"] == "dask"
    # The training run's logged holdout predictions pass the gate's checks on the cluster: not scored again.
    assert decision["challenger_predictions"]["source"] == "logged", decision["challenger_predictions"]
    assert "checked rows as logged" in decision["challenger_predictions"]["reason"]
    assert health["passed"] is True
    assert all(peak < 0.95 * limit for peak in peaks.values())
    assert room < frame_bytes < 2 * room  # no worker has room for the frame; the two together have
