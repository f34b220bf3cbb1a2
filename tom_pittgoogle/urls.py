"""The app's pages; a TOM includes them with ``path("pittgoogle/", include("tom_pittgoogle.urls"))``."""

from django.urls import include, path

app_name = "tom_pittgoogle"

urlpatterns = [
    path("oauth/", include("tom_pittgoogle.oauth.urls")),
]
