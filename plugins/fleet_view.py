"""The airflow-ml fleet view: an Airflow plugin that serves one row per city in the api-server.

Put this folder in ``[core] plugins_folder`` (``AIRFLOW__CORE__PLUGINS_FOLDER``). The api-server then
serves ``/airflow-ml/fleet`` (HTML) and ``/airflow-ml/api/fleet`` (JSON) behind Airflow's login, and the
UI's navigation gets a *Fleet* entry that shows the page. The app lives in :mod:`airflow_ml.fleet.app`.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from airflow_ml.fleet.app import HTML_PATH, URL_PREFIX, create_app


class AirflowMlFleetPlugin(AirflowPlugin):
    """Mounts the fleet view's app and adds it to the Airflow UI's navigation."""

    name = "airflow_ml_fleet"
    fastapi_apps = [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "Fleet"}]
    external_views = [
        {
            "name": "Fleet",
            "href": f"{URL_PREFIX}{HTML_PATH}",
            "destination": "nav",
            "url_route": "airflow-ml-fleet",
            "category": "browse",
        }
    ]
