from django.urls import path

from curation import views

app_name = "curation"

urlpatterns = [
    path("", views.index, name="index"),
    path("runs/<id:run_id>/", views.run_detail, name="run"),
    path("runs/<id:run_id>/progress.json", views.run_progress, name="run_progress"),
    path("runs/<id:run_id>/restart/", views.run_restart, name="run_restart"),
    path("runs/<id:run_id>/figures/<slug:key>.<str:fmt>", views.figure, name="figure"),
    path("datasets/<slug:slug>/meta-labels/", views.meta_labels, name="meta_labels"),
]
