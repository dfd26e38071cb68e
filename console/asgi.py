"""The ASGI stack, composed where it can be read in one place.

HTTP goes to Django. WebSockets go through the URL router to two stacks
(see console/live/routing.py): agents authenticate with a host token;
browsers with their session, behind the Origin check; ``top`` with a user
API token.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
django_application = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from console.live.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter({
    "http": django_application,
    "websocket": URLRouter(websocket_urlpatterns),
})
