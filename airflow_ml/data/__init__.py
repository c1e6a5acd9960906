"""Data helpers for airflow_ml (demo data generation and friends)."""
