from django.urls import path

from exports import views

app_name = "exports"
urlpatterns = [
    path("", views.release_list, name="list"),
    path("new/", views.release_new, name="new"),
    path("diff/", views.release_diff, name="diff"),
    path("<int:pk>/", views.release_detail, name="detail"),
    path("<int:pk>/build/", views.release_build, name="build"),
    path("<int:pk>/publish/", views.release_publish, name="publish"),
    path("<int:pk>/archive/", views.release_archive, name="archive"),
    path("<int:pk>/files/<str:name>", views.release_file, name="file"),
]
