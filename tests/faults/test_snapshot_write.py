"""A snapshot whose write fails part-way leaves nothing a reader could take for a snapshot, and a retry succeeds.

The fault is real: the snapshot task's first try runs in a process whose file size limit (``RLIMIT_FSIZE``)
is far below the snapshot's size, so the kernel refuses the write after that many bytes (``EFBIG``, as a
full disk gives ``ENOSPC``). The retry is the DAG's snapshot task, run by ``dag.test()`` for the same logical
date (so the same run id and snapshot folder) in this process, without the limit.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.support.airflow_runs import task_states
from tests.support.worlds import build_dag, lean_world

pytestmark = [pytest.mark.integration, pytest.mark.services]

CITY = "lisbon"
TEMPLATE = "fault_snapshot"
MODEL = f"{TEMPLATE}.{CITY}"
LIMIT = 32 * 1024  # bytes a process may write to one file; the snapshot's data file is several times larger

FIRST_TRY = textwrap.dedent(
    """
    import json, resource, sys
    from airflow_ml.data.snapshot import resolve_source, take_snapshot

    data_root, run_id, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
    source = resolve_source("{data_root}/raw/trips/{city}", data_root=data_root, city=%(city)r)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))  # Python ignores SIGXFSZ: writes get EFBIG
    try:
        take_snapshot(
            source, data_root + "/snapshots", template=%(template)r, city=%(city)r, run_id=run_id, window_days=90
        )
    except Exception as exc:
        print(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
        sys.exit(3)
    print(json.dumps({"error": None}))
    """
) % {"city": CITY, "template": TEMPLATE}


@pytest.fixture
def world(tmp_path: Path, airflow_db: Path, dags_dir: Path, mlflow_store: dict[str, str]) -> dict[str, Any]:
    root = tmp_path / "world"
    data_root = lean_world(root, dags_dir, CITY, template=TEMPLATE)
    return {"root": root, "data_root": data_root}


def test_a_snapshot_write_cut_short_leaves_no_snapshot_and_the_retry_completes_it(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.models.dagrun import DagRun
    from airflow.utils.types import DagRunType

    from airflow_ml.data.snapshot import (
        DATA_FILE,
        MANIFEST,
        content_hash,
        load_manifest,
        read_snapshot,
        snapshot_location,
    )
    from airflow_ml.exceptions import DataError

    monkeypatch.setenv("AIRFLOW_ML_DATA_ROOT", str(world["data_root"]))
    logical_date = dt.datetime(2026, 3, 1, 2, 0, tzinfo=dt.UTC)
    run_id = DagRun.generate_run_id(run_type=DagRunType.MANUAL, logical_date=logical_date, run_after=logical_date)
    uri = snapshot_location(str(world["data_root"] / "snapshots"), TEMPLATE, CITY, run_id)
    folder = Path(uri)

    first = subprocess.run(
        [sys.executable, "-c", FIRST_TRY, str(world["data_root"]), run_id, str(LIMIT)],
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert first.returncode == 3, first.stderr[-3000:]
    failure = json.loads(first.stdout.strip().splitlines()[-1])
    assert failure["error"] == "DataError", failure
    assert f"writing to {uri!r} failed part-way" in failure["message"]
    assert "File too large" in failure["message"]
    assert "free space or fix the storage behind AIRFLOW_ML_DATA_ROOT" in failure["message"]
    # Nothing under the snapshot's names: no manifest, no truncated data file, no partial file left over.
    leftovers = sorted(p.name for p in folder.iterdir()) if folder.exists() else []
    assert leftovers == []
    with pytest.raises(DataError, match="missing or incomplete"):
        load_manifest(uri)
    with pytest.raises(DataError, match=f"has no {DATA_FILE}"):
        read_snapshot(uri)

    # The retry of the snapshot task, in the DAG run it belongs to; the later tasks are not what this is about
    # (they read snapshots in every other DAG test), so they are marked done without running.
    run = build_dag(world["root"], MODEL).test(
        logical_date=logical_date, run_after=logical_date, mark_success_pattern=r"(?!snapshot$).*"
    )

    assert run.run_id == run_id, "the retry must write the same snapshot folder"
    assert str(run.state) == "success", task_states(MODEL, run.run_id)
    manifest = load_manifest(uri)
    assert not list(folder.glob("*.partial"))
    assert (folder / MANIFEST).is_file()
    assert (folder / DATA_FILE).stat().st_size > LIMIT, "the first try was cut short part-way through this file"
    assert content_hash(read_snapshot(uri)) == manifest.content_hash
    assert manifest.row_count == len(read_snapshot(uri))
