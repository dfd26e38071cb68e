"""WebSocket routes; asgi.py puts the authentication around each."""

from django.urls import path

from .auth import AgentTokenMiddleware, LiveAuth
from .consumers import AgentConsumer, LiveConsumer

websocket_urlpatterns = [
    path("ws/agent/", AgentTokenMiddleware(AgentConsumer.as_asgi())),
    path("ws/live/", LiveAuth(LiveConsumer.as_asgi())),
]
