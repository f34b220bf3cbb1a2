from django.urls import include, path

urlpatterns = [
    path("pittgoogle/", include("tom_pittgoogle.urls")),
    path("", include("tom_common.urls")),
]
