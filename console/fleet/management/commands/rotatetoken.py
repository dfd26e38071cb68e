"""``manage.py rotatetoken web-03``: revoke the host's agent tokens, issue a new one."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from console.fleet.models import AgentToken, Host

from .createhost import emit_token


class Command(BaseCommand):
    help = "Revoke every active agent token of a host and print a new one once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--keep-old", action="store_true",
                            help="do not revoke the current tokens (for a rolling change of agents)")
        parser.add_argument("--token-file", help="write the token to this file (mode 0600) instead of stdout")

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        try:
            host = Host.objects.get(name=options["name"])
        except Host.DoesNotExist:
            raise CommandError(f"no host named {options['name']!r}") from None
        if not options["keep_old"]:
            revoked = host.agent_tokens.active().update(revoked=timezone.now())
            self.stderr.write(f"revoked {revoked} token(s) of {host.name}")
        _, plaintext = AgentToken.issue(host=host, note="rotatetoken")
        emit_token(self, plaintext, options.get("token_file"), f"host {host.name}")
