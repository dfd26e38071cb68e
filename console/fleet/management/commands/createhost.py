"""``manage.py createhost web-03 --team payments``: a host and its agent token."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from console.fleet.models import AgentToken, Host, Team


def parse_labels(items: list[str]) -> dict[str, str]:
    labels = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise CommandError(f"label {item!r} is not NAME=VALUE")
        labels[name] = value
    return labels


class Command(BaseCommand):
    help = "Create a host (and its team if needed) and print its agent token once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--team", required=True)
        parser.add_argument("--label", action="append", default=[], metavar="NAME=VALUE")
        parser.add_argument("--token-file", help="write the token to this file (mode 0600) instead of stdout")

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        labels = parse_labels(options["label"])
        if Host.objects.filter(name=options["name"]).exists():
            raise CommandError(f"host {options['name']!r} exists; use rotatetoken to give it a new token")
        team, _ = Team.objects.get_or_create(name=options["team"])
        host = Host.objects.create(name=options["name"], team=team, labels=labels)
        _, plaintext = AgentToken.issue(host=host, note="createhost")
        emit_token(self, plaintext, options.get("token_file"), f"host {host.name} (team {team.name})")


def emit_token(command: BaseCommand, plaintext: str, path: str | None, what: str,
               kind: str = "Agent") -> None:
    """Print the token once, or write it to a 0600 file for automation."""
    if path:
        import os

        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(plaintext + "\n")
        command.stdout.write(f"{kind} token for {what} written to {path}")
        return
    command.stdout.write(f"{kind} token for {what} (shown once, store it now):")
    command.stdout.write(plaintext)
