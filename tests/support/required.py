"""A part the test needs is missing: skip on a developer's machine, fail under CI.

``scripts/test`` (the README's test command, which CI runs) has set the
machine up, so there a missing Redis, PostgreSQL, Chromium, Apache + mod_wsgi
or reference ingester is a broken machine, and a test that skipped would
pass work nobody tested. It sets ``WSGI_FLEET_TESTS=all``; ``CI`` counts too.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def strict() -> bool:
    return os.environ.get("WSGI_FLEET_TESTS") == "all" or bool(os.environ.get("CI"))


def missing(message: str) -> NoReturn:
    """Skip the calling test, or fail it where every part must be there."""
    if strict():
        pytest.fail(f"{message} (required here: WSGI_FLEET_TESTS=all or CI is set)", pytrace=False)
    pytest.skip(message)
