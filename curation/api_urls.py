from django.urls import path

from curation import api

urlpatterns = [
    path("runs/", api.RunListAPI.as_view(), name="curation-api-runs"),
    path("runs/<id:run_id>/", api.RunDetailAPI.as_view(), name="curation-api-run"),
    path("runs/<id:run_id>/restart/", api.RunRestartAPI.as_view(), name="curation-api-run-restart"),
    path("selector-models/", api.SelectorModelListAPI.as_view(), name="curation-api-selector-models"),
    path("classes/<id:class_id>/meta-label/", api.ClassMetaLabelAPI.as_view(), name="curation-api-class-meta-label"),
]
