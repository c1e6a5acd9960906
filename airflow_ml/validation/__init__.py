"""Data validation with Great Expectations Core 1.x: suites from ``expectations/``, readable verdicts."""

import logging

# GX's API-docs decorators log one INFO line per public function they skip at import (about 200), which
# Airflow's task logging keeps: every validate task's log opened with them, hiding what the task did.
logging.getLogger("great_expectations._docs_decorators").setLevel(logging.WARNING)
