"""Template helpers shared by the console's pages."""

from __future__ import annotations

from django import template
from django.urls import get_script_prefix

register = template.Library()


@register.simple_tag
def live_socket_path() -> str:
    """Path of the live WebSocket, under the script prefix the console is served at.

    The prefix is the one Django resolved for this request (FORCE_SCRIPT_NAME,
    or the server's SCRIPT_NAME / ASGI root_path), the same one ``{% url %}``
    uses, so the socket works when the console runs under a path behind a proxy.
    """
    return f"{get_script_prefix()}ws/live/"


@register.filter
def span_label(seconds: int) -> str:
    """A span in seconds as the toolbars name it: "30 s", "1 min", "5 min" (the choices
    come from the tab registry, so the label is made, not written next to each value)."""
    return f"{seconds // 60} min" if seconds >= 60 and seconds % 60 == 0 else f"{seconds} s"
