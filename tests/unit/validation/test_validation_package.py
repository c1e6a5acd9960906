"""Importing GX through airflow_ml.validation keeps GX's import-time chatter out of the task log."""

import subprocess
import sys

PROBE = """
import logging
records = []
class Keep(logging.Handler):
    def emit(self, record):
        records.append(record)
logging.basicConfig(level=logging.INFO)
logging.getLogger().addHandler(Keep())
from airflow_ml.validation.suite_check import check_suite
check_suite({"name": "probe", "expectations": []})
print(sum("Skipping registering" in r.getMessage() for r in records))
"""


def test_gx_import_logs_no_docs_decorator_lines_at_info() -> None:
    # A fresh process: GX is imported once per process, so the test session's own import would hide it.
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "0", done.stderr[-2000:]
