from django.urls import path

from review import api

app_name = "review-api"
urlpatterns = [
    path("queue/", api.QueueApi.as_view(), name="queue"),
    path("annotations/<id:annotation_id>/", api.AnnotationApi.as_view(), name="annotation"),
    path("annotations/<id:annotation_id>/accept/", api.AcceptApi.as_view(), name="accept"),
    path("annotations/<id:annotation_id>/reject/", api.RejectApi.as_view(), name="reject"),
    path("annotations/<id:annotation_id>/correct/", api.CorrectApi.as_view(), name="correct"),
    path("images/<id:image_id>/adjudication/", api.AdjudicationApi.as_view(), name="adjudication"),
    path("images/<id:image_id>/timeline/", api.TimelineApi.as_view(), name="timeline"),
    path("quality/", api.QualityApi.as_view(), name="quality"),
    path("returned/", api.ReturnedApi.as_view(), name="returned"),
]
