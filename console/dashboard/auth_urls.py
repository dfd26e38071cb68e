"""Sign-in, sign-out and password change with the console's own templates.

Not namespaced: Django's auth settings and views refer to these names
(``LOGIN_URL = "login"``, ``password_change_done``). Password reset by
e-mail is left out on purpose: the console sends no mail.
"""

from django.contrib.auth import views as auth_views
from django.urls import path

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    # Django's LogoutView accepts POST only (CSRF-protected); GET answers 405.
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password_change/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("password_change/done/", auth_views.PasswordChangeDoneView.as_view(),
         name="password_change_done"),
]
