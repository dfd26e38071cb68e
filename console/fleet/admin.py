"""Admin for teams, hosts and tokens: issue (an add form, and a host action) and revoke.

A new token's plaintext is shown once, on the page that answers the POST
that issued it (``token_issued``): not in an admin message, which would sit
in a cookie or the session until read, and never again afterwards, since
only its keyed hash is stored (console/fleet/tokens.py). The page is sent
``Cache-Control: no-store`` so that Back does not show it from the cache.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.cache import add_never_cache_headers

from .models import AgentToken, ApiToken, Host, Team, Token


def token_issued(admin_site: admin.AdminSite, request: HttpRequest, model: type[Token],
                 issued: list[tuple[Token, str]]) -> HttpResponse:
    """The page that shows ``issued`` (token, plaintext) pairs, once."""
    context = {**admin_site.each_context(request), "opts": model._meta, "issued": issued,
               "title": f"New {model._meta.verbose_name}" + ("s" if len(issued) > 1 else "")}
    response = TemplateResponse(request, "admin/fleet/token_issued.html", context)
    add_never_cache_headers(response)
    return response


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
        return False  # issued by the action or the token's add form, which show the plaintext once


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
    def issue_agent_token(self, request: HttpRequest, queryset: QuerySet[Host]) -> HttpResponse:
        issued = [AgentToken.issue(host=host, note=f"issued in the admin by {request.user}")
                  for host in queryset]
        return token_issued(self.admin_site, request, AgentToken, issued)


class TokenAdmin(admin.ModelAdmin):
    """Shared admin of agent and API tokens; ``owner`` names the field they belong to.

    The add form asks for the owner, an expiry and a note; the key, the
    secret and the hash are made on save (``Token.new_secret``).
    """

    owner: str
    readonly_fields = ["key", "pepper", "created", "last_used", "revoked"]
    list_filter = ["revoked", "pepper"]
    actions = ["revoke"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields = ["key", self.owner, "created", "last_used", "expires", "revoked", "pepper", "note"]
        self.list_display = list(self.fields)
        self.autocomplete_fields = [self.owner]

    def get_fields(self, request: HttpRequest, obj: Token | None = None) -> list[str]:
        return [self.owner, "expires", "note"] if obj is None else list(self.fields)

    def get_readonly_fields(self, request: HttpRequest, obj: Token | None = None) -> list[str]:
        return [] if obj is None else [*self.readonly_fields, self.owner]

    def save_model(self, request: HttpRequest, obj: Token, form: Any, change: bool) -> None:
        if not change:
            request._issued_token = obj.new_secret()  # type: ignore[attr-defined]
        super().save_model(request, obj, form, change)

    def response_add(self, request: HttpRequest, obj: Token, post_url_continue: str | None = None
                     ) -> HttpResponse:
        return token_issued(self.admin_site, request, type(obj), [(obj, request._issued_token)])  # type: ignore[attr-defined]

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = 0
        for token in queryset:
            if token.revoked is None:
                token.revoke()
                count += 1
        self.message_user(request, f"Revoked {count} token(s); their open connections close within "
                          "a few seconds.")


@admin.register(AgentToken)
class AgentTokenAdmin(TokenAdmin):
    owner = "host"
    search_fields = ["key", "host__name"]


@admin.register(ApiToken)
class ApiTokenAdmin(TokenAdmin):
    owner = "user"
    search_fields = ["key", "user__username"]
