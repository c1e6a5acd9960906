"""Unit tests of airflow_ml/templates/, one test module per module."""
