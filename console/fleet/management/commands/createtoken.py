"""``manage.py createtoken ann``: a user API token, for scripts that read ``/ws/live/``.

The token sees what its user sees (the hosts of the user's teams; staff:
all) and stops working when the user is deactivated, the token is revoked
in the admin, or it expires. Printed once, or written to a 0600 file.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from console.fleet.models import ApiToken

from .createhost import emit_token


class Command(BaseCommand):
    help = "Issue a user API token (wfu_...) and print it once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--days", type=float, help="expire after this many days (default: never)")
        parser.add_argument("--note", default="createtoken", help="what it is for (shown in the admin)")
        parser.add_argument("--revoke-old", action="store_true", help="revoke the user's other API tokens")
        parser.add_argument("--token-file", help="write the token to this file (mode 0600) instead of stdout")

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        model = get_user_model()
        try:
            user = model.objects.get(**{model.USERNAME_FIELD: options["username"]})
        except model.DoesNotExist:
            raise CommandError(f"no user named {options['username']!r}") from None
        if not user.is_active:
            raise CommandError(f"user {options['username']!r} is not active: their token would not work")
        days = options.get("days")
        if days is not None and not days > 0:
            raise CommandError("--days must be positive")
        if options["revoke_old"]:
            revoked = user.fleet_api_tokens.active().update(revoked=timezone.now())
            self.stderr.write(f"revoked {revoked} API token(s) of {options['username']}")
        expires = timezone.now() + timedelta(days=days) if days is not None else None
        _, plaintext = ApiToken.issue(user=user, expires=expires, note=options["note"][:200])
        what = f"user {options['username']}" + (f", expires {expires:%Y-%m-%d %H:%M} UTC" if expires else "")
        emit_token(self, plaintext, options.get("token_file"), what, kind="API")
