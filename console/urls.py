from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("console.dashboard.auth_urls")),
    path("", include("console.dashboard.urls")),
]
