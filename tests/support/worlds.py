"""Test worlds: a templates folder with demo cities, their demo data and the DAG file that builds them.

- :func:`copy_template` and :func:`write_loader` are the parts: a copy of the repository's ``ride_duration``
  template under another name, and a thin DAG file (like ``dags/retrain.py``) in a dags folder.
- :func:`make_city_world` and :func:`city_world` are one demo city with its data (and, for the second, a real
  MLflow store wired through the environment) for ``dag.test()`` runs.
- :func:`lean_world` is the fault tests' city: retries on, and off what the faults are not about (:data:`LEAN`).
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import REPO
from tests.support.city_files import LOOP_SECTIONS, without_section
from tests.support.mlflow_stores import wire_mlflow

#: What every fault world's city turns off: the faults are about the pipeline's plumbing, not the gate's rules.
LEAN = """\
training:
  num_boost_round: 60
gate:
  bootstrap: null
  slices: []
drift:
  enabled: false
health:
  enabled: false
"""


def write_loader(dags_dir: Path, name: str, templates_root: Path) -> Path:
    """Write a thin DAG file, like dags/retrain.py, that builds the cities of ``templates_root``.

    dag.test() serializes the DAGs it finds in the dags folder, so a test's DAG must be found there too.
    """
    path = dags_dir / f"{name}.py"
    path.write_text(
        "from airflow_ml.factory import register_dags\n"
        f"register_dags(globals(), templates_root={str(templates_root)!r}, "
        f"expectations_dir={str(REPO / 'expectations')!r})\n",
        encoding="utf-8",
    )
    return path


def copy_repository_config(root: Path) -> dict[str, Path]:
    """Copy the repository's ``dag_templates/`` and ``expectations/`` under ``root``; returns both paths."""
    templates, expectations = root / "dag_templates", root / "expectations"
    shutil.copytree(REPO / "dag_templates", templates)
    shutil.copytree(REPO / "expectations", expectations)
    return {"templates": templates, "expectations": expectations}


def copy_template(root: Path, template: str, extra: str = "") -> None:
    """Make ``root/templates`` and ``root/cities``, with a copy of the repo's ride_duration template named ``template``.

    Like :func:`tests.support.city_files.templates_folder`, the copy has no ``scoring:`` or ``monitoring:`` (the
    demo's loop, :data:`~tests.support.city_files.LOOP_SECTIONS`): a world that scores or monitors says how.
    ``extra`` (YAML) is appended to the copy.
    """
    (root / "templates").mkdir(parents=True)
    (root / "cities").mkdir()
    text = (REPO / "dag_templates" / "templates" / "ride_duration.yaml").read_text(encoding="utf-8")
    for section in LOOP_SECTIONS:
        text = without_section(text, section)
    (root / "templates" / f"{template}.yaml").write_text(
        text.replace("template: ride_duration\n", f"template: {template}\n") + extra, encoding="utf-8"
    )


def build_dag(root: Path, dag_id: str) -> Any:
    """A fresh DAG object of the world at ``root`` (``dag.test`` leaves a run's conf in the DAG's params)."""
    from airflow_ml.factory import register_dags

    return register_dags({}, templates_root=root, expectations_dir=REPO / "expectations")[dag_id]


def make_city_world(
    root: Path, dags_dir: Path, city: str, *, scale: float = 0.3, extra: str = "", template: str = "ride_duration"
) -> Path:
    """A templates folder with one demo city (no retries, no schedule), its demo data and its DAG loader.

    ``extra`` is appended to the city file (YAML of what this world's city changes). ``template`` names the
    copy of the ride_duration template, so that a world's DAG ids can differ from another world's.

    Returns:
        The data root, to export as ``AIRFLOW_ML_DATA_ROOT``.
    """
    from airflow_ml.data.demo import write_demo_data

    copy_template(root, template)
    (root / "cities" / f"{city}.yaml").write_text(
        f"city: {city}\ntemplate: {template}\ndag:\n  retries: 0\n  schedule: null\n{extra}", encoding="utf-8"
    )
    write_loader(dags_dir, f"world_{root.name}", root)
    write_demo_data(root / "data", cities=[city], batch="initial", scale=scale)
    return root / "data"


@contextlib.contextmanager
def city_world(
    root: Path, dags_dir: Path, city: str, *, extra: str = "", template: str = "ride_duration", scale: float = 0.3
) -> Iterator[dict[str, Any]]:
    """One demo city's world (see :func:`make_city_world`, ``scale`` its demo data's) with a real MLflow store, wired
    through the environment.

    Yields ``build`` (a fresh DAG object per call: ``dag.test(run_conf=...)`` leaves the conf in the in-process
    DAG's params, where it would leak into the next run), ``client``, ``data_root`` and ``store``.
    """
    from mlflow import MlflowClient

    data_root = make_city_world(root, dags_dir, city, extra=extra, template=template, scale=scale)
    dag_id = f"{template}.{city}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW_ML_DATA_ROOT", str(data_root))
        store = wire_mlflow(root / "mlflow", mp)
        yield {
            "build": lambda: build_dag(root, dag_id),
            "client": MlflowClient(tracking_uri=store["tracking_uri"], registry_uri=store["tracking_uri"]),
            "data_root": data_root,
            "store": store,
        }


def lean_world(
    root: Path,
    dags_dir: Path,
    city: str,
    *,
    template: str,
    retries: int = 2,
    retry_delay_minutes: float = 0.05,
    scale: float = 0.15,
    data_root: Path | None = None,
) -> Path:
    """A templates folder with one lean demo city (:data:`LEAN`), its DAG loader in ``dags_dir`` and its demo data.

    Args:
        root: An empty folder for the world.
        template: Name of the world's copy of ``ride_duration``: the DAG id is ``<template>.<city>``.
        retries: The city's ``dag.retries`` (a fault is survived by Airflow's retries).
        retry_delay_minutes: The city's ``dag.retry_delay_minutes`` (short: the tests wait for retries).
        data_root: Where the demo data goes (``root / "data"`` by default); returned.

    Returns:
        The local data root holding ``raw/trips/<city>``.
    """
    from airflow_ml.data.demo import write_demo_data

    copy_template(root, template)
    (root / "cities" / f"{city}.yaml").write_text(
        f"city: {city}\ntemplate: {template}\ndag:\n  retries: {retries}\n"
        f"  retry_delay_minutes: {retry_delay_minutes}\n  schedule: null\n{LEAN}",
        encoding="utf-8",
    )
    write_loader(dags_dir, f"faults_{template}", root)
    data_root = data_root or root / "data"
    write_demo_data(data_root, cities=[city], batch="initial", scale=scale)
    return data_root


def run_and_decision(
    world: dict[str, Any], template: str, city: str, conf: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One ``dag.test()`` run of ``world``'s city DAG: its state and the gate's ``decision.json`` (None without one)."""
    import json

    from airflow_ml.data.snapshot import snapshot_location

    run = world["build"]().test(run_conf=conf)
    folder = Path(snapshot_location(str(world["data_root"] / "snapshots"), template, city, run.run_id))
    path = folder / "decision.json"
    return {"state": str(run.state), "decision": json.loads(path.read_text()) if path.exists() else None}
