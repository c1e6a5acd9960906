"""The fleet view: one row per city (last run, champion and its score, last decision, drift, links).

:mod:`airflow_ml.fleet.app` is the FastAPI app the ``airflow_ml_fleet`` plugin (``plugins/fleet_view.py``)
mounts in Airflow's api-server; :mod:`~airflow_ml.fleet.metadata` reads the metadata database,
:mod:`~airflow_ml.fleet.model_states` and :mod:`~airflow_ml.fleet.trends` the MLflow registry,
:mod:`~airflow_ml.fleet.rows` joins them and :mod:`~airflow_ml.fleet.summary` counts them;
:mod:`~airflow_ml.fleet.html` renders the page (its rows in :mod:`~airflow_ml.fleet.cells`, the sparklines in
:mod:`~airflow_ml.fleet.sparkline`, its style and scripts in :mod:`~airflow_ml.fleet.page_static`).
"""
