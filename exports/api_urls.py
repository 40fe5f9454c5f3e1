from django.urls import path

from exports import api

app_name = "exports-api"
urlpatterns = [
    path("", api.ReleaseListCreate.as_view(), name="list"),
    path("diff/", api.ReleaseDiff.as_view(), name="diff"),
    path("<id:pk>/", api.ReleaseDetail.as_view(), name="detail"),
    path("<id:pk>/build/", api.ReleaseBuild.as_view(), name="build"),
    path("<id:pk>/publish/", api.ReleasePublish.as_view(), name="publish"),
    path("<id:pk>/archive/", api.ReleaseDownload.as_view(), name="archive"),
    path("<id:pk>/files/<str:name>", api.ReleaseFileDownload.as_view(), name="file"),
]
