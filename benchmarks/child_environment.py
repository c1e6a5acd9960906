"""The environment of a benchmark's child process: the source tree it runs, every library's telemetry off."""

from __future__ import annotations

import os
from pathlib import Path

#: What ``make`` exports too: no library phones home from a benchmark.
QUIET = {
    "GX_ANALYTICS_ENABLED": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
    "SCARF_NO_ANALYTICS": "true",
}


def child_environment(code: Path) -> dict[str, str]:
    """This process's environment with ``code`` (a source tree) first on ``PYTHONPATH`` and telemetry off."""
    path = os.pathsep.join([str(code), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return {**os.environ, "PYTHONPATH": path, **QUIET}
