"""One step per task of a run: each operator resolves its inputs, calls its step, and links, logs and returns.

A step takes its task's frozen settings object (:mod:`~airflow_ml.ml.steps.step_settings`), built once by the
factory from the validated spec, and returns the task's typed XCom payload
(:mod:`~airflow_ml.ml.steps.xcom_payloads`). Steps are plain Python over an ``MlflowClient`` and storage
options: a notebook or a unit test calls them without Airflow.
"""
