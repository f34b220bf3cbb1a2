"""The app's pages; a TOM includes them with ``path("pittgoogle/", include("tom_pittgoogle.urls"))``."""

from django.urls import include, path

from tom_pittgoogle import views

app_name = "tom_pittgoogle"

urlpatterns = [
    path("oauth/", include("tom_pittgoogle.oauth.urls")),
    path("status/", views.status, name="status"),
    path("stored/page/<int:page>/", views.stored_page, name="stored-page"),
]
