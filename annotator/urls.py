from django.urls import path

from annotator import views

app_name = "annotator"
urlpatterns = [
    path("images/<int:image_id>/<str:size>", views.image_file, name="image"),
]
