"""Helpers shared by the test tiers (no test imports a conftest's fixtures from here)."""
