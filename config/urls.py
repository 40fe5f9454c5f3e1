from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

urlpatterns = [
    path("", include("catalog.urls")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("prototypes/", include("prototypes.urls")),
    path("annotate/", include("annotator.urls")),
    path("review/", include("review.urls")),
    path("curation/", include("curation.urls")),
    path("releases/", include("exports.urls")),
    path("evaluation/", include("evaluation.urls")),
    # REST API
    path("api/prototypes/", include("prototypes.api_urls")),
    path("api/annotate/", include("annotator.api_urls")),
    path("api/review/", include("review.api_urls")),
    path("api/curation/", include("curation.api_urls")),
    path("api/releases/", include("exports.api_urls")),
    path("api/evaluation/", include("evaluation.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="api-redoc"),
]
