from django.urls import path

from accounts import views

app_name = "accounts"
urlpatterns = [
    path("roles/", views.roles, name="roles"),
    path("roles/<id:user_id>/", views.roles_set, name="roles_set"),
]
