from django.urls import path

from prototypes import views

app_name = "prototypes"
urlpatterns = [
    path("", views.run_list, name="runs"),
    path("runs/<id:run_id>/", views.run_detail, name="run"),
    path("runs/<id:run_id>/make-current", views.run_make_current, name="make_current"),
]
