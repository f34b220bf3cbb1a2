"""The app's pages; a TOM includes them with ``path("pittgoogle/", include("tom_pittgoogle.urls"))``."""

from django.apps import apps
from django.urls import include, path

from tom_pittgoogle import views

app_name = "tom_pittgoogle"

urlpatterns = [
    path("oauth/", include("tom_pittgoogle.oauth.urls")),
    path("status/", views.status, name="status"),
    path("plotly/<str:version>/plotly.min.js", views.plotly_js, name="plotly-js"),
    path("stored/page/<int:page>/", views.stored_page, name="stored-page"),
    path("targets/<int:pk>/history/", views.target_history, name="target-history"),
]

if apps.is_installed("tom_alerts"):
    from tom_pittgoogle.adapters import broker_pages

    urlpatterns += [
        path("alerts/create-targets/", broker_pages.create_targets, name="create-targets"),
        path("alerts/query/<int:pk>/results/<slug:key>/", broker_pages.fetched_results_page, name="query-results"),
    ]
