"""airflow-ml: retrain one LightGBM model per city or client, safely, every night, on Apache Airflow 3.

The package is layered (see ``ARCHITECTURE``): ``templates`` (YAML configuration) feeds ``factory``
(DAG building), which instantiates ``operators`` and ``hooks``; those call the plain-Python core in
``data``, ``validation`` and ``ml``. Importing this package imports nothing heavy.
"""

from __future__ import annotations

import os

__version__ = "0.1.0"

# The product never phones home: telemetry of the libraries it drives is off unless the user opts in
# by setting these variables themselves.
for _name, _value in {
    "GX_ANALYTICS_ENABLED": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
    "SCARF_NO_ANALYTICS": "true",
    # A served model carries its own pinned requirements, not the lock file of the orchestrator's project.
    "MLFLOW_UV_AUTO_DETECT": "false",
}.items():
    os.environ.setdefault(_name, _value)
