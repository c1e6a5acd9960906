"""``python -m airflow_ml.cli``: the ``airflow-ml`` command without its console script."""

import sys

from airflow_ml.cli import main

sys.exit(main())
