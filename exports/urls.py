from django.urls import path

from exports import views

app_name = "exports"
urlpatterns = [
    path("", views.release_list, name="list"),
    path("new/", views.release_new, name="new"),
    path("diff/", views.release_diff, name="diff"),
    path("<id:pk>/", views.release_detail, name="detail"),
    path("<id:pk>/build/", views.release_build, name="build"),
    path("<id:pk>/publish/", views.release_publish, name="publish"),
    path("<id:pk>/archive/", views.release_archive, name="archive"),
    path("<id:pk>/files/<str:name>", views.release_file, name="file"),
]
