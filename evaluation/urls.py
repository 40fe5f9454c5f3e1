from django.urls import path

from evaluation import views

app_name = "evaluation"
urlpatterns = [
    path("", views.index, name="index"),
    path("zoo/", views.zoo, name="zoo"),
    path("compare/", views.compare, name="compare"),
    path("compare/figure.png", views.compare_figure, name="compare_figure"),
    path("<id:evaluation_id>/", views.detail, name="detail"),
    path("<id:evaluation_id>/images/", views.images, name="images"),
    path("<id:evaluation_id>/images/<id:image_id>.jpg", views.thumbnail, name="thumbnail"),
    path("<id:evaluation_id>/share", views.share, name="share"),
    path("<id:evaluation_id>/figures/<slug:key>.<str:fmt>", views.figure, name="figure"),
    path("<id:evaluation_id>/download.<str:fmt>", views.download, name="download"),
]
