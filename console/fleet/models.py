"""Teams, hosts and the tokens that let agents write and people read.

A user sees the hosts of the teams they belong to; staff see every host.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, ClassVar

from django.conf import settings
from django.db import models
from django.utils import timezone

from . import tokens

#: last_used is written at most this often, so a busy agent does not turn
#: every connection into a database write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class Team(models.Model):
    name = models.CharField(max_length=100, unique=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="fleet_teams", blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class HostQuerySet(models.QuerySet["Host"]):
    def visible_to(self, user: Any) -> HostQuerySet:
        if not user.is_authenticated or not user.is_active:
            return self.none()
        if user.is_staff:
            return self.all()
        return self.filter(team__members=user).distinct()


class Host(models.Model):
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="hosts")
    name = models.CharField(max_length=253, unique=True, help_text="The host's name as people know it.")
    labels = models.JSONField(default=dict, blank=True,
                              help_text='Free-form labels for filtering, e.g. {"env": "prod", "dc": "fra1"}.')
    created = models.DateTimeField(auto_now_add=True)
    last_seen = models.DateTimeField(null=True, blank=True, editable=False)
    agent_version = models.CharField(max_length=100, blank=True, editable=False)
    datagrams_received = models.BigIntegerField(default=0, editable=False)
    datagrams_lost = models.BigIntegerField(default=0, editable=False,
                                            help_text="Lost by sequence gaps, as the agent reported last.")
    datagrams_malformed = models.BigIntegerField(default=0, editable=False)
    batches_refused = models.BigIntegerField(default=0, editable=False,
                                             help_text="Oversized or malformed batches the console refused.")

    objects = HostQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class TokenQuerySet(models.QuerySet):
    def active(self) -> TokenQuerySet:
        now = timezone.now()
        unexpired = models.Q(expires__isnull=True) | models.Q(expires__gt=now)
        return self.filter(revoked__isnull=True).filter(unexpired)


class Token(models.Model):
    """Shared shape of agent and API tokens: the plaintext is never stored."""

    PREFIX: ClassVar[str]

    key = models.CharField(max_length=tokens.KEY_LENGTH, unique=True, editable=False)
    digest = models.CharField(max_length=64, editable=False)
    pepper = models.CharField(max_length=32, editable=False,
                              help_text="Id of the pepper the digest was made with (docs/tokens.md).")
    created = models.DateTimeField(auto_now_add=True)
    expires = models.DateTimeField(null=True, blank=True)
    last_used = models.DateTimeField(null=True, blank=True, editable=False)
    revoked = models.DateTimeField(
        null=True, blank=True, editable=False,
        help_text="Set when the token was revoked; a revoked token never works again.")
    note = models.CharField(max_length=200, blank=True)

    objects = TokenQuerySet.as_manager()

    class Meta:
        abstract = True

    def new_secret(self) -> str:
        """Give this (unsaved) token a new key and secret; the plaintext is returned once."""
        plaintext, self.key = tokens.generate(self.PREFIX)
        self.pepper, self.digest = tokens.digest(plaintext)
        return plaintext

    @classmethod
    def issue(cls, **fields: Any) -> tuple[Token, str]:
        """Create a token; the plaintext is returned once and never kept."""
        token = cls(**fields)
        plaintext = token.new_secret()
        token.save(force_insert=True)
        return token, plaintext

    @classmethod
    def authenticate(cls, plaintext: str) -> Token | None:
        """The active token matching ``plaintext``, or None, in constant time per candidate.

        A token hashed under an older pepper than the current one is hashed
        again under the current one: the one moment its plaintext is at hand,
        so old peppers empty out as tokens are used (docs/tokens.md).
        """
        parsed = tokens.parse(plaintext)
        if parsed is None or parsed.prefix != cls.PREFIX:
            return None
        token = cls.objects.active().filter(key=parsed.key).first()
        if token is None or not tokens.matches(plaintext, token.digest, token.pepper):
            return None
        if token.pepper != tokens.current_id():
            token.pepper, token.digest = tokens.digest(plaintext)
            type(token).objects.filter(pk=token.pk).update(pepper=token.pepper, digest=token.digest)
        token.touch()
        return token

    @classmethod
    def still_active(cls, pk: int) -> bool:
        """Whether the token ``pk`` is still neither revoked, expired nor deleted."""
        return cls.objects.active().filter(pk=pk).exists()

    def touch(self) -> None:
        now = timezone.now()
        if self.last_used is None or now - self.last_used > LAST_USED_RESOLUTION:
            type(self).objects.filter(pk=self.pk).update(last_used=now)
            self.last_used = now

    def revoke(self) -> None:
        if self.revoked is None:
            self.revoked = timezone.now()
            self.save(update_fields=["revoked"])

    @property
    def is_active(self) -> bool:
        return self.revoked is None and (self.expires is None or self.expires > timezone.now())


class AgentToken(Token):
    """Lets one host's agent write samples for that host, and nothing else."""

    PREFIX = "wfa"
    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="agent_tokens")

    def __str__(self) -> str:
        return f"{self.PREFIX}_{self.key}… ({self.host})"


class ApiToken(Token):
    """Lets a user's scripts read what the user may see, over ``/ws/live/`` (``manage.py createtoken``)."""

    PREFIX = "wfu"
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="fleet_api_tokens")

    def __str__(self) -> str:
        return f"{self.PREFIX}_{self.key}… ({self.user})"
