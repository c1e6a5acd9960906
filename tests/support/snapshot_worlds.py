"""Snapshot retention's world: a templates folder, snapshots of many runs on a local data root, a real registry.

:func:`retention_world` is template ``ride_duration`` (keep_last 2, a global fallback parent) with cities oslo and
bergen (``retention: {enabled: false}``); snapshots of oslo's runs r1..r8 (r1, r2, r3, r5 registered; r2 only
through its training run's tag), one being written (r9), the parent's p1..p4 (p1 registered), a removed city's
(tromso), another template's (late), and two of the old layout (one registered). :data:`ALL` names every snapshot,
:data:`DELETED` those a prune of ride_duration deletes; :func:`left` names the snapshots still there.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from tests.support.worlds import copy_template

#: The first manifest's write time; the others follow one hour apart, in the order the runs are listed.
T0 = 1_767_000_000


def migrated_store(folder: Path) -> Path:
    """A migrated, empty MLflow SQLite store in ``folder``; each world copies it (migrating a store costs seconds)."""
    from mlflow import MlflowClient

    path = folder / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}", registry_uri=f"sqlite:///{path}").search_registered_models()
    return path


def retention_world(tmp_path: Path, empty_store: Path) -> dict[str, Any]:
    """The world of the module's docstring under ``tmp_path``, its registry a copy of ``empty_store``.

    Returns ``templates``, ``data``, ``root`` (of the snapshots), ``uris`` (by short name), ``client``, ``store``.
    """
    from airflow_ml.data.snapshot import MANIFEST, take_snapshot

    templates = tmp_path / "dag_templates"
    copy_template(templates, "ride_duration", "fallback:\n  parent: global\nretention:\n  keep_last: 2\n")
    (templates / "cities" / "oslo.yaml").write_text("city: oslo\ntemplate: ride_duration\n", encoding="utf-8")
    (templates / "cities" / "bergen.yaml").write_text(
        "city: bergen\ntemplate: ride_duration\nretention:\n  enabled: false\n", encoding="utf-8"
    )
    data = tmp_path / "data"
    source = data / "raw" / "date=2026-01-05"
    source.mkdir(parents=True)
    pd.DataFrame({"x": [1.0, 2.0], "y": [3.0, 4.0]}).to_parquet(source / "part.parquet")
    root = data / "snapshots"
    uris: dict[str, str] = {}
    clock = iter(range(T0, T0 + 100 * 3600, 3600))

    def snap(template: str, city: str, run: str) -> str:
        uri = take_snapshot(str(source.parent), str(root), template=template, city=city, run_id=run).uri
        os.utime(Path(uri) / MANIFEST, (next(clock),) * 2)
        uris[f"{template}/{city}/{run}"] = uri
        return uri

    for run in ("r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8"):
        snap("ride_duration", "oslo", run)
    for run in ("b1", "b2", "b3"):
        snap("ride_duration", "bergen", run)
    for run in ("p1", "p2", "p3", "p4"):
        snap("ride_duration", "global", run)
    for run in ("t1", "t2"):
        snap("ride_duration", "tromso", run)
    snap("late", "oslo", "l1")
    being_written = root / "ride_duration" / "oslo" / "r9"
    being_written.mkdir()
    (being_written / "data.parquet.partial").write_bytes(b"PAR1")
    for run in ("old1", "old2"):  # as snapshots were written before aa4a0ef: <root>/<city>/<run>/
        old = root / "oslo" / run
        shutil.copytree(Path(uris["ride_duration/oslo/r1"]), old)
        manifest = json.loads((old / MANIFEST).read_text())
        (old / MANIFEST).chmod(0o644)
        (old / MANIFEST).write_text(json.dumps({**manifest, "uri": str(old), "template": "", "run_id": run}))
        uris[f"oslo/{run}"] = str(old)
    shutil.copy(empty_store, tmp_path / "mlflow.db")
    store = f"sqlite:///{tmp_path}/mlflow.db"
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=store, registry_uri=store)
    model_dir = tmp_path / "model"
    model_dir.mkdir()

    def register(model: str, uri: str, *aliases: str, on_run_only: bool = False) -> None:
        tags = {"airflow_ml.snapshot_uri": uri}
        experiment = client.get_experiment_by_name(model) or client.get_experiment(client.create_experiment(model))
        run_id = client.create_run(experiment.experiment_id, tags=tags).info.run_id
        if not client.search_registered_models(f"name = '{model}'"):
            client.create_registered_model(model)
        version = client.create_model_version(model, str(model_dir), run_id=run_id, tags={} if on_run_only else tags)
        for alias in aliases:
            client.set_registered_model_alias(model, alias, version.version)

    register("ride_duration.oslo", uris["ride_duration/oslo/r1"], "previous-champion")
    register("ride_duration.oslo", uris["ride_duration/oslo/r3"], "champion")
    register("ride_duration.oslo", uris["ride_duration/oslo/r5"], "challenger")
    register("ride_duration.oslo", uris["ride_duration/oslo/r2"], on_run_only=True)
    register("ride_duration.oslo", uris["oslo/old2"])
    register("ride_duration.global", uris["ride_duration/global/p1"], "champion")
    return {"templates": templates, "data": data, "root": root, "uris": uris, "client": client, "store": store}


def short(location: str, world: dict[str, Any]) -> str:
    """``ride_duration/oslo/r4`` for ``<root>/ride_duration/oslo/r4-<hash of the run id>``."""
    return re.sub(r"-[0-9a-f]{10}$", "", str(Path(location).relative_to(world["root"])))


def left(world: dict[str, Any]) -> set[str]:
    """The short names of the snapshots left under the world's root."""
    from airflow_ml.data.retention import list_snapshots

    return {short(s.location, world) for s in list_snapshots(str(world["root"]))}


#: Every snapshot of the world, by short name.
ALL = {
    *(f"ride_duration/oslo/r{i}" for i in range(1, 10)),
    *(f"ride_duration/bergen/b{i}" for i in range(1, 4)),
    *(f"ride_duration/global/p{i}" for i in range(1, 5)),
    "ride_duration/tromso/t1",
    "ride_duration/tromso/t2",
    "late/oslo/l1",
    "oslo/old1",
    "oslo/old2",
}


#: What a prune of ride_duration deletes.
DELETED = {"ride_duration/oslo/r4", "ride_duration/oslo/r6", "ride_duration/global/p2"}
