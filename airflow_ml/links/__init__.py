"""Extra links shown on the provider's tasks in the Airflow UI."""
