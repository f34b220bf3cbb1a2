"""The Google sign-in pages (included by :mod:`tom_pittgoogle.urls`, in its ``tom_pittgoogle`` namespace)."""

from django.urls import path

from tom_pittgoogle.oauth import views

urlpatterns = [
    path("", views.connection, name="oauth-connection"),
    path("connect/", views.connect, name="oauth-connect"),
    path("callback/", views.callback, name="oauth-callback"),
    path("disconnect/", views.disconnect, name="oauth-disconnect"),
]
