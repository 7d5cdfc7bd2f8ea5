from django.urls import path

from apps.deployments.views import environments, releases, requests

app_name = "deployments"
urlpatterns = [
    path("", releases.matrix_view, name="matrix"),
    path("requests/", requests.deploy_request_list_view, name="request-list"),
    path("requests/new/", requests.deploy_request_create_view, name="request-create"),
    path(
        "requests/new/preview/",
        requests.deploy_request_preview_view,
        name="request-preview",
    ),
    path("requests/<int:pk>/", requests.deploy_request_detail_view, name="request-detail"),
    path("requests/<int:pk>/change/", requests.deploy_request_revise_view, name="request-revise"),
    path("requests/<int:pk>/cancel/", requests.deploy_request_cancel_view, name="request-cancel"),
    path("requests/<int:pk>/abort/", requests.deploy_request_abort_view, name="request-abort"),
    path("releases/<int:pk>/rollback/", releases.release_rollback_view, name="release-rollback"),
    path("environments/", environments.environment_list_view, name="environment-list"),
    path("environments/new/", environments.environment_create_view, name="environment-create"),
    path(
        "environments/<slug:slug>/", environments.environment_detail_view, name="environment-detail"
    ),
    path(
        "environments/<slug:slug>/edit/",
        environments.environment_update_view,
        name="environment-update",
    ),
    path(
        "environments/<slug:slug>/protection/",
        environments.protection_update_view,
        name="environment-protection",
    ),
    path(
        "environments/<slug:slug>/freezes/", environments.freeze_create_view, name="freeze-create"
    ),
    path(
        "environments/<slug:slug>/freezes/<int:pk>/lift/",
        environments.freeze_lift_view,
        name="freeze-lift",
    ),
    path(
        "environments/<slug:slug>/test-connection/",
        environments.environment_test_connection_view,
        name="environment-test-connection",
    ),
]
