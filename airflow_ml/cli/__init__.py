"""The ``airflow-ml`` command: one module per command group, the parser and dispatch in :mod:`.commands`.

``airflow_ml.cli:main`` is the console script's entry point. This module imports nothing itself, so that
``airflow-ml --help`` and the commands that set up Airflow's environment before importing it (``run``,
``status``, ``env``, ``demo``) start from a clean slate.
"""

from __future__ import annotations

from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``airflow-ml`` console script; returns the exit code (see :func:`.commands.main`)."""
    from airflow_ml.cli.commands import main as run

    return run(argv)


__all__ = ["main"]
