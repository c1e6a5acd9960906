"""The ``smtp`` failure notifier of a city's DAG, with nothing from YAML in a template field.

The SMTP provider's :class:`SmtpNotifier` renders ``to``, ``smtp_conn_id`` and every other argument with Jinja
before it sends. A city file names the recipients and the connection, so they must be taken literally: this
subclass renders only the subject and body, which the factory writes. The factory imports this module only
for a city that asks for mail, so DAG files without it never import the SMTP provider.
"""

from __future__ import annotations

from collections.abc import Sequence

from airflow.providers.smtp.notifications.smtp import SmtpNotifier

#: The two texts Jinja renders (the run's ids and the exception), both written here, never read from YAML.
SUBJECT = "airflow-ml: {{ ti.dag_id }}.{{ ti.task_id }} failed"
BODY = "Task {{ ti.task_id }} of {{ ti.dag_id }} failed in run {{ run_id }}: {{ exception }}"


class LiteralSmtpNotifier(SmtpNotifier):
    """An :class:`SmtpNotifier` whose recipients and connection id are sent as written, never rendered."""

    template_fields = ("subject", "html_content")  # type: ignore[assignment]  # fewer fields, on purpose


def failure_mail(to: Sequence[str], conn_id: str) -> LiteralSmtpNotifier:
    """The notifier that mails ``to`` through the Airflow connection ``conn_id`` when a task fails."""
    return LiteralSmtpNotifier(to=list(to), smtp_conn_id=conn_id, subject=SUBJECT, html_content=BODY)


#: The supervisor's notice (a demotion, or an alert): the monitor task puts its payload in the context as ``monitor``.
NOTICE_SUBJECT = "airflow-ml: supervisor {{ monitor.status }} for {{ monitor.model_name }}"
NOTICE_BODY = (
    "{{ monitor.model_name }} v{{ monitor.champion_version }}: {{ monitor.reason }}<br>"
    "Decision record: {{ monitor.record_uri }} (monitor run {{ run_id }})"
)


def notice_mail(to: Sequence[str], conn_id: str) -> LiteralSmtpNotifier:
    """The notifier that mails ``to`` when the supervisor demotes a city's champion (or would, in mode alert)."""
    return LiteralSmtpNotifier(to=list(to), smtp_conn_id=conn_id, subject=NOTICE_SUBJECT, html_content=NOTICE_BODY)
