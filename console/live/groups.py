"""The channel-layer groups, named in one place: who is sent what.

A page joins the groups of what it shows: ``fleet.all`` (staff) or one
``team.<id>`` per team of the user for the fleet, ``host.<id>`` for a
host's frames and ``host.<id>.<tab>`` for the open tab's live data. The
publisher and the tabs send to the same names, so a page can only ever
receive what its subscribe was allowed to join.
"""

from __future__ import annotations

from typing import Any

#: The fleet updates of every host, for staff users.
STAFF_GROUP = "fleet.all"


def host_group(host_id: int) -> str:
    """One host's frames and status."""
    return f"host.{host_id}"


def tab_group(host_id: int, tab: str) -> str:
    """One tab's live data for one host."""
    return f"host.{host_id}.{tab}"


def team_group(team_id: int) -> str:
    """The fleet updates of one team's hosts."""
    return f"team.{team_id}"


def fleet_groups(user: Any, hosts: list[dict[str, Any]]) -> list[str]:
    """What a fleet subscribe joins: every host for staff, else the teams of ``hosts``."""
    if user.is_staff:
        return [STAFF_GROUP]
    return sorted({team_group(h["team_id"]) for h in hosts})
