from django.urls import path

from apps.deployments import views

app_name = "deployments"
urlpatterns = [
    path("environments/", views.environment_list_view, name="environment-list"),
    path("environments/new/", views.environment_create_view, name="environment-create"),
    path("environments/<slug:slug>/", views.environment_detail_view, name="environment-detail"),
    path(
        "environments/<slug:slug>/edit/", views.environment_update_view, name="environment-update"
    ),
    path(
        "environments/<slug:slug>/test-connection/",
        views.environment_test_connection_view,
        name="environment-test-connection",
    ),
]
