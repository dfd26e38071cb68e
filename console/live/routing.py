"""WebSocket routes; asgi.py puts the authentication around each."""

from django.urls import path

from .agents import AgentConsumer
from .auth import AgentTokenMiddleware, LiveAuth
from .pages import LiveConsumer

websocket_urlpatterns = [
    path("ws/agent/", AgentTokenMiddleware(AgentConsumer.as_asgi())),
    path("ws/live/", LiveAuth(LiveConsumer.as_asgi())),
]
