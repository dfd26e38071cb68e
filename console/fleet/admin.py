"""Admin for teams, hosts and tokens, with issue and revoke actions.

A new token's plaintext is shown once, in the admin message after the
action, and is not recoverable afterwards: only its digest is stored.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from .models import AgentToken, ApiToken, Host, Team


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "member_count", "host_count"]
    search_fields = ["name"]
    filter_horizontal = ["members"]

    @admin.display(description="members")
    def member_count(self, team: Team) -> int:
        return team.members.count()

    @admin.display(description="hosts")
    def host_count(self, team: Team) -> int:
        return team.hosts.count()


class AgentTokenInline(admin.TabularInline):
    model = AgentToken
    fields = ["key", "created", "last_used", "expires", "revoked", "note"]
    readonly_fields = ["key", "created", "last_used", "revoked"]
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # tokens are issued by the action, which shows the plaintext once


@admin.register(Host)
class HostAdmin(admin.ModelAdmin):
    list_display = ["name", "team", "labels", "last_seen", "agent_version", "datagrams_lost",
                    "datagrams_malformed", "batches_refused"]
    list_filter = ["team"]
    search_fields = ["name"]
    readonly_fields = ["created", "last_seen", "agent_version", "datagrams_received", "datagrams_lost",
                       "datagrams_malformed", "batches_refused"]
    inlines = [AgentTokenInline]
    actions = ["issue_agent_token"]

    @admin.action(description="Issue a new agent token (shown once)")
    def issue_agent_token(self, request: HttpRequest, queryset: QuerySet[Host]) -> None:
        for host in queryset:
            _, plaintext = AgentToken.issue(host=host, note=f"issued in the admin by {request.user}")
            self.message_user(request, f"Agent token for {host}: {plaintext} (shown once; copy it now)",
                              messages.WARNING)


class TokenAdmin(admin.ModelAdmin):
    """Shared admin of agent and API tokens; ``owner`` names the field they belong to."""

    owner: str
    readonly_fields = ["key", "created", "last_used", "revoked"]
    list_filter = ["revoked"]
    actions = ["revoke"]

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.list_display = ["key", self.owner, "created", "last_used", "expires", "revoked", "note"]
        self.fields = ["key", self.owner, "created", "last_used", "expires", "revoked", "note"]

    def get_readonly_fields(self, request: HttpRequest, obj: object = None) -> list[str]:
        return [*self.readonly_fields, self.owner]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = 0
        for token in queryset:
            if token.revoked is None:
                token.revoke()
                count += 1
        self.message_user(request, f"Revoked {count} token(s).")


@admin.register(AgentToken)
class AgentTokenAdmin(TokenAdmin):
    owner = "host"
    search_fields = ["key", "host__name"]


@admin.register(ApiToken)
class ApiTokenAdmin(TokenAdmin):
    owner = "user"
    search_fields = ["key", "user__username"]
