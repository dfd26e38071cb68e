"""The ASGI stack, composed where it can be read in one place.

HTTP goes to Django. WebSockets go through the URL router to two stacks
(see console/live/routing.py): agents authenticate with a host token;
browsers with their session, behind the Origin check; scripts with a user
API token.
"""

import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
django_application = get_asgi_application()

from django.conf import settings  # noqa: E402

if settings.WSGI_FLEET["GC_THRESHOLD"] > 0:
    # Everything loaded so far lives as long as the process: move it out of the collector's sight.
    gc.freeze()
    gc.set_threshold(settings.WSGI_FLEET["GC_THRESHOLD"], 50, 100)

if settings.WSGI_FLEET["REDIS_URL"]:
    # Said once at start, in the log an operator reads: whether Redis keeps what we acknowledge.
    from console.windows import durability

    durability.check_at_start(settings.WSGI_FLEET["REDIS_URL"])

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from console.live.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter({
    "http": django_application,
    "websocket": URLRouter(websocket_urlpatterns),
})
