"""Unit tests of airflow_ml/validation/, one test module per module."""
