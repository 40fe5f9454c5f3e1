from django.urls import path

from annotator import api

urlpatterns = [
    path("campaigns/", api.CampaignListApi.as_view(), name="annotate-api-campaigns"),
    path("campaigns/<int:campaign_id>/next", api.NextApi.as_view(), name="annotate-api-next"),
    path("assignments/<int:assignment_id>/submit", api.SubmitApi.as_view(), name="annotate-api-submit"),
    path("assignments/<int:assignment_id>/skip", api.SkipApi.as_view(), name="annotate-api-skip"),
    path("annotations/", api.MyAnnotationsApi.as_view(), name="annotate-api-annotations"),
    path("annotations/<int:annotation_id>", api.MyAnnotationApi.as_view(), name="annotate-api-annotation"),
]
