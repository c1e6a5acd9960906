"""The fleet view plugin stays cheap to load: every Airflow process (scheduler, workers...) loads plugins."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support import REPO

HEAVY = ("pandas", "numpy", "mlflow", "great_expectations", "lightgbm", "pyarrow", "sklearn", "airflow.api_fastapi.app")


def test_loading_the_plugin_imports_nothing_heavy() -> None:
    script = (
        "import json, runpy, sys\n"
        f"plugin = runpy.run_path({str(REPO / 'plugins' / 'fleet_view.py')!r})['AirflowMlFleetPlugin']\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print(json.dumps({'heavy': heavy, 'name': plugin.name, 'prefix': plugin.fastapi_apps[0]['url_prefix'],"
        " 'href': plugin.external_views[0]['href']}))\n"
    )

    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False)

    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found == {"heavy": [], "name": "airflow_ml_fleet", "prefix": "/airflow-ml", "href": "/airflow-ml/fleet"}
