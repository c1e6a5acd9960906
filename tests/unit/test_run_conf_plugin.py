"""The run-conf guard plugin stays cheap to load (every Airflow process loads plugins) and names its middleware."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support import REPO

HEAVY = ("pandas", "numpy", "mlflow", "great_expectations", "lightgbm", "pyarrow", "sklearn", "airflow.api_fastapi.app")


def test_loading_the_plugin_imports_nothing_heavy_and_installs_the_guard_as_a_root_middleware() -> None:
    script = (
        "import json, runpy, sys\n"
        f"plugin = runpy.run_path({str(REPO / 'plugins' / 'run_conf.py')!r})['AirflowMlRunConfPlugin']\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "(middleware,) = plugin.fastapi_root_middlewares\n"
        "print(json.dumps({'heavy': heavy, 'name': plugin.name, 'middleware': middleware['middleware'].__name__}))\n"
    )

    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False)

    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found == {"heavy": [], "name": "airflow_ml_run_conf", "middleware": "RunConfGuard"}
