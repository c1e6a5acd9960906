"""Watching the champion once real outcomes arrive: late labels joined to the prediction log, live error per
window, the supervisor that demotes a model gone bad, and the live comparison of a challenger in shadow.

Plain Python, no Airflow: the monitor DAG's operators call it.
"""
