"""The ASGI stack, composed where it can be read in one place.

HTTP goes to Django. WebSockets: browsers (session auth, Origin checked
against ALLOWED_HOSTS) and agents (bearer token, no Origin: agents are not
browsers) have separate stacks and routes.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
django_application = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402

application = ProtocolTypeRouter({"http": django_application})
