"""Database work of the consumers, each one a small sync function run off the loop."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from django.db.models import F
from django.utils import timezone

from console.fleet.models import Host

COUNTER_FIELDS = {"received": "datagrams_received", "lost": "datagrams_lost",
                  "malformed": "datagrams_malformed"}


def host_entry(host: Host) -> dict[str, Any]:
    """What the consumers need of a host, as plain data safe to pass between threads."""
    return {"id": host.pk, "name": host.name, "team": host.team.name, "team_id": host.team_id,
            "labels": host.labels, "agent_version": host.agent_version}


@database_sync_to_async
def visible_hosts(user: Any) -> list[dict[str, Any]]:
    return [host_entry(h) for h in Host.objects.visible_to(user).select_related("team")]


@database_sync_to_async
def visible_host(user: Any, host_id: Any) -> dict[str, Any] | None:
    if not isinstance(host_id, int) or isinstance(host_id, bool):
        return None
    host = Host.objects.visible_to(user).select_related("team").filter(pk=host_id).first()
    return host_entry(host) if host is not None else None


@database_sync_to_async
def record_hello(host_id: int, agent_version: str) -> None:
    Host.objects.filter(pk=host_id).update(last_seen=timezone.now(), agent_version=agent_version)


@database_sync_to_async
def record_heartbeat(host_id: int, counters: dict[str, int]) -> None:
    updates: dict[str, Any] = {"last_seen": timezone.now()}
    updates.update({column: counters[key] for key, column in COUNTER_FIELDS.items() if key in counters})
    Host.objects.filter(pk=host_id).update(**updates)


@database_sync_to_async
def count_refused(host_id: int) -> None:
    Host.objects.filter(pk=host_id).update(batches_refused=F("batches_refused") + 1)
