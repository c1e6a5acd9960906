"""The services tier's shared fixture: ``browser`` (headless Debian Chromium, tests.support.browser)."""

from __future__ import annotations

from tests.support.browser import browser

__all__ = ["browser"]
