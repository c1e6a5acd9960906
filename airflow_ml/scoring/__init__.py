"""Scoring with the champion: batch scoring runs and the HTTP server, both writing the prediction log.

Plain Python, no Airflow: the operators and the ``airflow-ml serve`` command call it.
"""
