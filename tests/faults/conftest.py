"""Fixtures of the fault suite: whole deployments (support.deployment)."""

from support.deployment import deploy, work

__all__ = ["deploy", "work"]
