from django.contrib import admin
from django.urls import include, path, register_converter
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView

from accounts.views import ThrottledLoginView
from infra.api import IdConverter

# Under /api/ Django's own 400/403/404/500 answers come in the API's JSON error shape.
handler400 = "infra.api.handler400"
handler403 = "infra.api.handler403"
handler404 = "infra.api.handler404"
handler500 = "infra.api.handler500"

# `<id:pk>`: a database id of at most 15 digits; a longer one is a 404, not an OverflowError.
register_converter(IdConverter, "id")

urlpatterns = [
    path("", include("catalog.urls")),
    # Before django.contrib.auth.urls: the sign-in page with the throttle's message (429 when locked).
    path("accounts/login/", ThrottledLoginView.as_view(), name="login"),
    path("accounts/", include("accounts.urls")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("prototypes/", include("prototypes.urls")),
    path("annotate/", include("annotator.urls")),
    path("review/", include("review.urls")),
    path("curation/", include("curation.urls")),
    path("releases/", include("exports.urls")),
    # REST API
    path("api/prototypes/", include("prototypes.api_urls")),
    path("api/annotate/", include("annotator.api_urls")),
    path("api/review/", include("review.api_urls")),
    path("api/curation/", include("curation.api_urls")),
    path("api/releases/", include("exports.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its init script from a URL of its own (no inline script, CSP 'self').
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="api-redoc"),
]
