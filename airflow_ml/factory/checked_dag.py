"""A DAG whose ``test()`` refuses a run's bad conf before the run exists.

Airflow validates each Param of a run's conf against its JSON Schema when it creates the run, but keeps a key
that is no Param (a typo such as ``num_boost_rounds``), cannot compare two Params (``force`` needs a
``reason``) and takes ``60.0`` for an integer. The factory's DAGs are of this class, so
``dag.test(run_conf=...)`` and ``airflow dags test -c`` refuse such a conf first; the ``airflow_ml_run_conf``
plugin does the same for the REST API and the UI, and the first task of every run refuses it whatever created
the run (see :func:`airflow_ml.operators.overrides.conf_problems`).
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import DAG
from airflow.sdk.exceptions import ParamValidationError

from airflow_ml.operators.overrides import conf_problems, param_defaults, refusal

#: The position of ``run_conf`` among ``DAG.test``'s arguments (run_after, logical_date, run_conf, ...).
_RUN_CONF_POSITION = 2


class CheckedConfDAG(DAG):
    """An Airflow DAG; its :meth:`test` checks the conf against the DAG's Params before creating the run."""

    def test(self, *args: Any, **kwargs: Any) -> Any:
        """Like :meth:`airflow.sdk.DAG.test`, after refusing a conf with unknown keys or conflicting values.

        Raises:
            ParamValidationError: naming each unknown key (with the closest Param), each value the run's
                tasks would refuse and each conflict; no run is created.
        """
        conf = args[_RUN_CONF_POSITION] if len(args) > _RUN_CONF_POSITION else kwargs.get("run_conf")
        problems = conf_problems(conf, param_defaults(self.params))
        if problems:
            raise ParamValidationError(refusal(self.dag_id, problems))
        return super().test(*args, **kwargs)
