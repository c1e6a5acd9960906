"""The airflow-ml run-conf guard: an Airflow plugin that refuses a bad conf when a run is created in the api-server.

Put this folder in ``[core] plugins_folder`` (``AIRFLOW__CORE__PLUGINS_FOLDER``). For the DAGs tagged
``airflow-ml``, a run triggered through the REST API or the UI with a conf key that is no Param of the DAG
(a typo: ``num_boost_rounds``), or with ``promotion_mode: force`` and no ``reason``, is answered 400 with the
closest Param's name, and no run is created. The middleware lives in :mod:`airflow_ml.fleet.conf_guard`.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from airflow_ml.fleet.conf_guard import RunConfGuard


class AirflowMlRunConfPlugin(AirflowPlugin):
    """Installs :class:`~airflow_ml.fleet.conf_guard.RunConfGuard` in front of the api-server's routes."""

    name = "airflow_ml_run_conf"
    fastapi_root_middlewares = [{"middleware": RunConfGuard, "name": "airflow-ml run conf guard"}]
