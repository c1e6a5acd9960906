"""Import this module in a worker's parent process so that the validate tasks it forks start with GX ready.

Importing Great Expectations costs seconds of CPU, more than the validation itself at a million rows. A
task process forked from a parent that has imported it pays nothing: the modules are shared copy-on-write.
Airflow 3.3's LocalExecutor starts its worker processes from a ``forkserver`` that imports the modules of
``[scheduler] mp_forkserver_preload`` first, and each worker forks its task processes from itself::

    AIRFLOW__SCHEDULER__MP_START_METHOD=forkserver
    AIRFLOW__SCHEDULER__MP_FORKSERVER_PRELOAD=airflow_ml.validation.gx_preload

Importing it runs :func:`airflow_ml.validation.runner.warm_up`: GX imported, the process's ephemeral context
built and a first validation of one row made, all once.
"""

from __future__ import annotations

from airflow_ml.validation.runner import warm_up

warm_up()
