from django.urls import path

from prototypes import api

urlpatterns = [
    path("runs/", api.RunList.as_view(), name="prototype-runs"),
    path("runs/<id:pk>/", api.RunDetail.as_view(), name="prototype-run"),
    path("runs/<id:run_id>/prototypes/", api.RunPrototypes.as_view(), name="prototype-run-prototypes"),
]
