"""Data validation with Great Expectations Core 1.x: suites from ``expectations/``, readable verdicts."""
