"""``top``'s tests run a real console (support.deployment) fed by real agents and simulators."""

from support.deployment import deploy, work

__all__ = ["deploy", "work"]
