from django.urls import path

from annotator import views

app_name = "annotator"
urlpatterns = [
    path("", views.index, name="index"),
    path("campaigns/", views.campaign_admin, name="campaigns"),
    path("campaigns/<id:campaign_id>/", views.campaign_detail, name="campaign"),
    path("campaigns/<id:campaign_id>/status", views.campaign_status, name="campaign-status"),
    path(
        "campaigns/<id:campaign_id>/qualifications/<id:user_id>/reset",
        views.qualification_reset,
        name="qualification-reset",
    ),
    path("campaigns/<id:campaign_id>/answers.<str:fmt>", views.campaign_answers_export, name="campaign-answers"),
    path("c/<id:campaign_id>/next", views.campaign_next, name="next"),
    path("a/<id:assignment_id>/", views.assignment_form, name="assignment"),
    path("a/<id:assignment_id>/skip", views.assignment_skip, name="skip"),
    path("a/<id:assignment_id>/feedback", views.qualification_feedback, name="feedback"),
    path("mine/", views.my_annotations, name="mine"),
    path("mine/<id:annotation_id>/", views.annotation_edit, name="edit"),
    path("images/<id:image_id>/<str:size>", views.image_file, name="image"),
]
