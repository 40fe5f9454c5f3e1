from django.urls import path

from evaluation import api

urlpatterns = [
    path("evaluations/", api.EvaluationList.as_view(), name="api-evaluations"),
    path("evaluations/<id:evaluation_id>/", api.EvaluationDetail.as_view(), name="api-evaluation"),
    path(
        "evaluations/<id:evaluation_id>/accuracies_per_factor.csv",
        api.EvaluationCsv.as_view(),
        name="api-evaluation-csv",
    ),
    path("evaluations/<id:evaluation_id>/images/", api.EvaluationImages.as_view(), name="api-evaluation-images"),
    path("evaluations/<id:evaluation_id>/share/", api.EvaluationShare.as_view(), name="api-evaluation-share"),
    path("compare/", api.Compare.as_view(), name="api-evaluation-compare"),
    path("zoo/", api.Zoo.as_view(), name="api-evaluation-zoo"),
]
