from django.urls import path

from apps.deployments import release_views, request_views, views

app_name = "deployments"
urlpatterns = [
    path("", release_views.matrix_view, name="matrix"),
    path("requests/", request_views.deploy_request_list_view, name="request-list"),
    path("requests/new/", request_views.deploy_request_create_view, name="request-create"),
    path(
        "requests/new/preview/",
        request_views.deploy_request_preview_view,
        name="request-preview",
    ),
    path("requests/<int:pk>/", request_views.deploy_request_detail_view, name="request-detail"),
    path(
        "requests/<int:pk>/change/", request_views.deploy_request_revise_view, name="request-revise"
    ),
    path(
        "requests/<int:pk>/cancel/", request_views.deploy_request_cancel_view, name="request-cancel"
    ),
    path("requests/<int:pk>/abort/", request_views.deploy_request_abort_view, name="request-abort"),
    path(
        "releases/<int:pk>/rollback/", release_views.release_rollback_view, name="release-rollback"
    ),
    path("environments/", views.environment_list_view, name="environment-list"),
    path("environments/new/", views.environment_create_view, name="environment-create"),
    path("environments/<slug:slug>/", views.environment_detail_view, name="environment-detail"),
    path(
        "environments/<slug:slug>/edit/", views.environment_update_view, name="environment-update"
    ),
    path(
        "environments/<slug:slug>/protection/",
        views.protection_update_view,
        name="environment-protection",
    ),
    path("environments/<slug:slug>/freezes/", views.freeze_create_view, name="freeze-create"),
    path(
        "environments/<slug:slug>/freezes/<int:pk>/lift/",
        views.freeze_lift_view,
        name="freeze-lift",
    ),
    path(
        "environments/<slug:slug>/test-connection/",
        views.environment_test_connection_view,
        name="environment-test-connection",
    ),
]
