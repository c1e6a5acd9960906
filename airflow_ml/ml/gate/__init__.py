"""The promotion gate: its rules, one check per rule, the decision records, the promotion modes and the judge.

- :mod:`~airflow_ml.ml.gate.rules`: :class:`GateRules`, the frozen settings the factory builds from the spec.
- :mod:`~airflow_ml.ml.gate.checks`: one function per rule, in the order the gate applies them.
- :mod:`~airflow_ml.ml.gate.records`: what the gate decided (:class:`GateDecision`) and its evidence.
- :mod:`~airflow_ml.ml.gate.modes`: the promotion modes (``auto``, ``force``...) and what each does.
- :mod:`~airflow_ml.ml.gate.judge`: scores the holdout predictions and decides.
- :mod:`~airflow_ml.ml.gate.bootstrap`, :mod:`~airflow_ml.ml.gate.slices`: the numeric evidence (numpy, pandas).
- :mod:`~airflow_ml.ml.gate.naive_baseline`: the naive-baseline rule's settings and evaluation.
- :mod:`~airflow_ml.ml.gate.fleet_outlier`: the fleet-outlier rule (the challenger's skill against its sibling cities').
- :mod:`~airflow_ml.ml.gate.schema_change`: the schema-change rule (the challenger's inputs against the champion's).

Every module but ``bootstrap`` and ``slices`` is free of numpy at import (ruff's TID253 holds them to it), so
parsing DAG files may import them; this package's ``__init__`` imports nothing.
"""
