"""The factory's DAG (factory/builder.py): no value from YAML ever reaches Jinja. The only template fields of a DAG
built hold XCom references, and a failure notifier's only template fields hold the subject and body the factory writes.

A YAML string such as ``"{data_root}/raw/{{ conn.mlflow_default.password }}/{city}"`` would put a connection's
password in the task log if a template field held it. The loader refuses ``{{`` in YAML; these tests build
DAGs from configs that bypass it and show that nothing renders it anyway.
"""

from __future__ import annotations

from typing import Any

import pytest

from airflow_ml.factory import build_dag, register_dags, register_parent_dags
from airflow_ml.factory.params import trigger_params
from airflow_ml.factory.rollback import build_rollback_dag
from airflow_ml.templates import load_city_file
from tests.support import REPO

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
    """Berlin's config with Jinja in every free-text field a task or notifier takes, built directly (no YAML check)."""
    from airflow_ml.templates.dag_spec import NotifierSpec

    config = load_city_file(TEMPLATES / "cities" / "berlin.yaml", TEMPLATES / "templates")
    dataset = config.dataset.model_copy(update={"source": "{data_root}/raw/" + JINJA + "/{city}"})
    mail = NotifierSpec(kind="smtp", to=[f"{JINJA}@example.org", "ops@example.org"], conn_id=f"smtp_{JINJA}")
    dag = config.dag.model_copy(update={"on_failure": [mail]})
    return config.model_copy(update={"dataset": dataset, "suite": f"suite_{JINJA}", "dag": dag})


_CALLBACKS = (
    "on_execute_callback",
    "on_failure_callback",
    "on_success_callback",
    "on_retry_callback",
    "on_skipped_callback",
)


def _callbacks(holder: Any) -> list[Any]:
    """The callbacks (notifiers included) of a task or a DAG."""
    found = []
    for name in _CALLBACKS:
        value = getattr(holder, name, None)
        found.extend(value if isinstance(value, list | tuple) else [value] if value is not None else [])
    return found


def test_every_template_field_of_every_callback_holds_the_subject_or_body_the_factory_writes() -> None:
    dags = [*_every_dag(), build_dag(_jinja_config(), expectations_dir=EXPECTATIONS)]
    seen = 0
    for dag in dags:
        for holder in [dag, *dag.tasks]:
            for callback in _callbacks(holder):
                for name in getattr(callback, "template_fields", ()):
                    seen += 1
                    value = getattr(callback, name)
                    assert name in ("subject", "html_content"), (dag.dag_id, holder, name, value)
                    assert JINJA not in str(value), (dag.dag_id, holder, name)
                    assert "example.org" not in str(value), (dag.dag_id, holder, name)
    assert seen >= 2 * len(dags[-1].tasks)  # the walk saw the notifier of every task of the Jinja config


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

    assert dag.get_task("snapshot").settings["source"] == "{data_root}/raw/" + JINJA + "/{city}"
    assert dag.get_task("validate").settings["suite"] == f"suite_{JINJA}"
    for task in dag.tasks:
        rendered = {name: getattr(task, name) for name in task.template_fields}
        assert SECRET not in repr(rendered), (task.task_id, rendered)


def test_a_notifier_sends_the_recipients_and_connection_of_the_config_as_written() -> None:
    dag = build_dag(_jinja_config(), expectations_dir=EXPECTATIONS)
    (notifier,) = dag.get_task("train").on_failure_callback
    ti = {"dag_id": dag.dag_id, "task_id": "train"}
    context: dict[str, Any] = {
        "conn": {"mlflow_default": {"password": SECRET}},
        "ti": ti,
        "run_id": "manual__1",
        "exception": "boom",
    }

    # What the notifier does when it is called, before it sends (BaseNotifier.__call__).
    notifier.render_template_fields(context)

    assert notifier.to == [f"{JINJA}@example.org", "ops@example.org"]
    assert notifier.smtp_conn_id == f"smtp_{JINJA}"
    assert notifier.subject == "airflow-ml: ride_duration.berlin.train failed"
    assert notifier.html_content == "Task train of ride_duration.berlin failed in run manual__1: boom"
    assert SECRET not in repr(vars(notifier))


@pytest.mark.parametrize(
    ("run_conf", "named"),
    [
        ({"num_boost_rounds": 1}, "did you mean 'num_boost_round'"),
        ({"promotion_mode": "force"}, "needs a reason"),
        ({"reason": "\x00"}, "control character"),
        # Airflow's schema check (Draft 7) takes 60.0 for an integer; the run's first task used to refuse it.
        ({"num_boost_round": 60.0}, "num_boost_round: expected an integer, got 60.0"),
        # Used to loop over 2.9 million days in the snapshot, then fail with a raw OverflowError.
        ({"window_end": "9999-12-31"}, "window_end 9999-12-31 is outside 1970-01-01..2200-12-31"),
    ],
)
def test_dag_test_refuses_a_bad_conf_before_it_touches_the_database(run_conf: dict[str, Any], named: str) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    dag = build_dag(load_city_file(TEMPLATES / "cities" / "berlin.yaml", TEMPLATES / "templates"), expectations_dir=".")

    with pytest.raises(ParamValidationError, match=r"the conf of a run of ride_duration\.berlin is refused") as info:
        dag.test(run_conf=run_conf)
    assert named in str(info.value)


def test_the_rollback_dag_refuses_a_misspelt_key_too() -> None:
    from airflow.sdk.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError, match="unknown trigger parameter 'modle': did you mean 'model'"):
        build_rollback_dag().test(run_conf={"modle": "ride_duration.berlin", "reason": "bad model"})


def test_a_name_pattern_names_every_tasks_model_and_tags_the_dag_with_it(root: Any) -> None:
    from airflow_ml.ml.steps.step_settings import GateSettings

    with (root / "templates" / "ride_duration.yaml").open("a", encoding="utf-8") as handle:
        handle.write("\nregistry:\n  name_pattern: 'main.ml.{template}_{city}'\n")
    (root / "cities" / "oslo.yaml").write_text("city: oslo\ntemplate: ride_duration\n", encoding="utf-8")
    default = build_dag(
        load_city_file(TEMPLATES / "cities" / "lisbon.yaml", TEMPLATES / "templates"), expectations_dir=EXPECTATIONS
    )

    dag = build_dag(load_city_file(root / "cities" / "oslo.yaml", root / "templates"), expectations_dir=EXPECTATIONS)

    assert "model:main.ml.ride_duration_oslo" in dag.tags
    assert {"airflow-ml", "airflow-ml:retrain", "city:oslo"} <= set(dag.tags)  # the fleet view's row of Oslo
    assert not any(tag.startswith("model:") for tag in default.tags)  # the default names it as its DAG
    assert dag.get_task("register").model_name == "main.ml.ride_duration_oslo"
    gate = GateSettings.from_dict(dag.get_task("gate").settings)
    assert (gate.model_name, gate.name_pattern) == ("main.ml.ride_duration_oslo", "main.ml.{template}_{city}")


def test_the_fleet_view_selects_retraining_dags_by_the_tag_the_builder_sets() -> None:
    from airflow_ml.fleet.metadata import RETRAIN_TAG
    from airflow_ml.templates.dag_spec import RETRAIN_TAG as SET_BY_THE_FACTORY

    assert RETRAIN_TAG == SET_BY_THE_FACTORY  # two spellings: the fleet does not import the templates package


def test_the_fleet_view_reads_tasks_that_every_retraining_dag_has() -> None:
    from airflow_ml.fleet.metadata import APPROVAL_TASK, DRIFT_TASK

    config = load_city_file(TEMPLATES / "cities" / "berlin.yaml", TEMPLATES / "templates")
    dag = build_dag(config, expectations_dir=EXPECTATIONS)
    # The fleet view finds a city's drift verdict and its waiting approval by these task ids (one query per fleet).
    assert dag.get_task(DRIFT_TASK).task_type == "DriftCheckOperator"
    assert dag.get_task(APPROVAL_TASK).task_type == "PromotionApprovalOperator"
    assert dag.get_task("gate").approval_task_id == APPROVAL_TASK
