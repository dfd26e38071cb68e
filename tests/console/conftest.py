"""Fixtures of the tests that run the console as its own process (support.deployment)."""

from support.deployment import deploy, work

__all__ = ["deploy", "work"]
