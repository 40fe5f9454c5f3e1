from django.urls import path

from review import views

app_name = "review"
urlpatterns = [
    path("", views.queue, name="queue"),
    path("auto-accept/", views.auto_accept, name="auto_accept"),
    path("annotations/<id:annotation_id>/", views.audit, name="audit"),
    path("annotations/<id:annotation_id>/<str:action>/", views.decide, name="decide"),
    path("images/<id:image_id>/adjudicate/", views.adjudicate, name="adjudicate"),
    path("images/<id:image_id>/timeline/", views.image_timeline, name="timeline"),
    path("quality/", views.quality, name="quality"),
    path("quality.csv", views.quality_csv, name="quality_csv"),
    path("returned/", views.returned, name="returned"),
    path("settings/", views.audit_settings, name="settings"),
]
