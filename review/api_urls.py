from django.urls import path

from review import api

app_name = "review-api"
urlpatterns = [
    path("queue/", api.QueueApi.as_view(), name="queue"),
    path("annotations/<int:annotation_id>/", api.AnnotationApi.as_view(), name="annotation"),
    path("annotations/<int:annotation_id>/accept/", api.DecisionApi.as_view(action="accept"), name="accept"),
    path("annotations/<int:annotation_id>/reject/", api.DecisionApi.as_view(action="reject"), name="reject"),
    path("annotations/<int:annotation_id>/correct/", api.DecisionApi.as_view(action="correct"), name="correct"),
    path("images/<int:image_id>/adjudication/", api.AdjudicationApi.as_view(), name="adjudication"),
    path("images/<int:image_id>/timeline/", api.TimelineApi.as_view(), name="timeline"),
    path("quality/", api.QualityApi.as_view(), name="quality"),
    path("returned/", api.ReturnedApi.as_view(), name="returned"),
]
