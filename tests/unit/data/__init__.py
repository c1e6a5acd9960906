"""Unit tests of airflow_ml/data/, one test module per module."""
