from django.urls import path

from annotator import api

urlpatterns = [
    path("campaigns/", api.CampaignListApi.as_view(), name="annotate-api-campaigns"),
    path("campaigns/<id:campaign_id>/next", api.NextApi.as_view(), name="annotate-api-next"),
    path("assignments/<id:assignment_id>/submit", api.SubmitApi.as_view(), name="annotate-api-submit"),
    path("assignments/<id:assignment_id>/skip", api.SkipApi.as_view(), name="annotate-api-skip"),
    path("annotations/", api.MyAnnotationsApi.as_view(), name="annotate-api-annotations"),
    path("annotations/<id:annotation_id>", api.MyAnnotationApi.as_view(), name="annotate-api-annotation"),
]
