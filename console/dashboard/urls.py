"""The console's pages (namespace ``dashboard``); accounts are in ``auth_urls``."""

from django.urls import path

from . import views

app_name = "dashboard"

urlpatterns = [
    path("", views.fleet, name="fleet"),
    # ``path``, not ``str``: host names are free text in the admin and may hold a slash.
    path("hosts/<path:name>/", views.host, name="host"),
]
