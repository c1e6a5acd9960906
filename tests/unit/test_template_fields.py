"""No value from YAML ever reaches Jinja: the only template fields of a built DAG hold XCom references.

A YAML string such as ``"{data_root}/raw/{{ conn.mlflow_default.password }}/{city}"`` would put a connection's
password in the task log if a template field held it. The loader refuses ``{{`` in YAML; these tests build
DAGs from configs that bypass it and show that nothing renders it anyway.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from airflow_ml.factory import build_dag, register_dags, register_parent_dags
from airflow_ml.factory.params import trigger_params
from airflow_ml.factory.rollback import build_rollback_dag
from airflow_ml.templates import load_city_file

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "dag_templates"
EXPECTATIONS = REPO / "expectations"
SECRET = "pw-of-the-mlflow-connection"
JINJA = "{{ conn.mlflow_default.password }}"


def _every_dag() -> list[Any]:
    namespace: dict[str, Any] = {}
    dags = [
        *register_dags(namespace, templates_root=TEMPLATES, expectations_dir=EXPECTATIONS).values(),
        *register_parent_dags(namespace, templates_root=TEMPLATES, expectations_dir=EXPECTATIONS).values(),
        build_rollback_dag(),
    ]
    assert len(dags) >= 4
    return dags


def test_every_template_field_of_every_built_dag_holds_an_xcom_reference_or_nothing() -> None:
    from airflow.sdk.definitions.xcom_arg import XComArg

    found = {}
    for dag in _every_dag():
        for task in dag.tasks:
            for name in task.template_fields:
                value = getattr(task, name)
                found[f"{dag.dag_id}.{task.task_id}.{name}"] = value
                assert value is None or isinstance(value, XComArg), (dag.dag_id, task.task_id, name, value)
    assert "ride_duration.berlin.validate.snapshot" in found  # the walk saw the XCom inputs


def _jinja_config() -> Any:
    """Berlin's config with Jinja in every free-text field a task takes, built directly (no YAML check)."""
    config = load_city_file(TEMPLATES / "cities" / "berlin.yaml", TEMPLATES / "templates")
    dataset = config.dataset.model_copy(update={"source": "{data_root}/raw/" + JINJA + "/{city}"})
    return config.model_copy(update={"dataset": dataset, "suite": f"suite_{JINJA}"})


def test_a_jinja_source_that_got_past_the_yaml_check_is_never_rendered() -> None:
    from airflow.sdk.definitions.xcom_arg import XComArg

    config = _jinja_config()
    dag = build_dag(config, expectations_dir=EXPECTATIONS)
    # What Jinja would read: ``conn.mlflow_default.password`` resolves through this mapping.
    params = {name: param.value for name, param in trigger_params(config).items()}
    context: dict[str, Any] = {"conn": {"mlflow_default": {"password": SECRET}}, "params": params}

    # As Airflow renders a task's template fields before execute (an XCom reference is pulled, not rendered).
    for task in dag.tasks:
        for name in task.template_fields:
            if not isinstance(getattr(task, name), XComArg):
                setattr(task, name, task.render_template(getattr(task, name), context))

    assert dag.get_task("snapshot").source == "{data_root}/raw/" + JINJA + "/{city}"
    assert dag.get_task("validate").suite == f"suite_{JINJA}"
    for task in dag.tasks:
        rendered = {name: getattr(task, name) for name in task.template_fields}
        assert SECRET not in repr(rendered), (task.task_id, rendered)


@pytest.mark.parametrize("run_conf", [{"num_boost_rounds": 1}, {"promotion_mode": "force"}, {"reason": "\x00"}])
def test_dag_test_refuses_a_bad_conf_before_it_touches_the_database(run_conf: dict[str, Any]) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    dag = build_dag(load_city_file(TEMPLATES / "cities" / "berlin.yaml", TEMPLATES / "templates"), expectations_dir=".")

    with pytest.raises(ParamValidationError, match=r"the conf of a run of ride_duration\.berlin is refused"):
        dag.test(run_conf=run_conf)


def test_the_rollback_dag_refuses_a_misspelt_key_too() -> None:
    from airflow.sdk.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError, match="unknown trigger parameter 'modle': did you mean 'model'"):
        build_rollback_dag().test(run_conf={"modle": "ride_duration.berlin", "reason": "bad model"})
