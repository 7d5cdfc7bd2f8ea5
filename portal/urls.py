from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.urls import URLPattern, URLResolver, include, path
from django_prometheus import exports as prometheus_exports
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from apps.accounts.api import ApiTokenViewSet, MeView, TeamViewSet
from apps.accounts.forms import LoginForm
from apps.approvals.api import AliasPolicyViewSet, ApprovalRequestViewSet, PromotionViewSet
from apps.catalog.api import (
    ModelVersionViewSet,
    RegisteredModelViewSet,
    SyncNowView,
    SyncStateView,
)
from apps.catalog.views import mlflow_webhook_view
from apps.deployments.api import (
    DeployMatrixView,
    DeployRequestViewSet,
    EnvironmentViewSet,
    ReleaseViewSet,
)
from apps.incidents.api import IncidentViewSet
from apps.incidents.webhook import alertmanager_webhook_view
from portal import views

router = DefaultRouter()
router.register("incidents", IncidentViewSet, basename="incident")
router.register("teams", TeamViewSet, basename="team")
router.register("tokens", ApiTokenViewSet, basename="token")
router.register("models", RegisteredModelViewSet, basename="model")
router.register("versions", ModelVersionViewSet, basename="version")
router.register("approvals", ApprovalRequestViewSet, basename="approval")
router.register("promotions", PromotionViewSet, basename="promotion")
router.register("alias-policies", AliasPolicyViewSet, basename="alias-policy")
router.register("environments", EnvironmentViewSet, basename="environment")
router.register("deploy-requests", DeployRequestViewSet, basename="deploy-request")
router.register("releases", ReleaseViewSet, basename="release")

api_v1: list[URLPattern | URLResolver] = [
    path("me/", MeView.as_view(), name="me"),
    path("sync-state/", SyncStateView.as_view(), name="sync-state"),
    path("sync-state/run/", SyncNowView.as_view(), name="sync-run"),
    path("deploy-matrix/", DeployMatrixView.as_view(), name="deploy-matrix"),
    path("", include(router.urls)),
]

urlpatterns = [
    path("", views.dashboard_view, name="dashboard"),
    path("healthz", views.healthz_view, name="healthz"),
    path("readyz", views.readyz_view, name="readyz"),
    path("metrics", login_not_required(prometheus_exports.ExportToDjangoView), name="metrics"),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(
            template_name="accounts/login.html",
            authentication_form=LoginForm,
            redirect_authenticated_user=True,
        ),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/", include("apps.accounts.urls")),
    path("audit/", include("apps.audit.urls")),
    path("deployments/", include("apps.deployments.urls")),
    path("catalog/", include("apps.catalog.urls")),
    path("approvals/", include("apps.approvals.urls")),
    path("incidents/", include("apps.incidents.urls")),
    path("hooks/mlflow/", mlflow_webhook_view, name="mlflow-webhook"),
    path("hooks/alertmanager/", alertmanager_webhook_view, name="alertmanager-webhook"),
    path("admin/", admin.site.urls),
    path("api/v1/", include((api_v1, "api"), namespace="api")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path(
        "api/docs/",
        # Swagger UI sets inline styles; scripts stay same-origin only.
        csp_update({"style-src": [UNSAFE_INLINE]})(
            SpectacularSwaggerSplitView.as_view(url_name="api-schema")
        ),
        name="api-docs",
    ),
]

if settings.OIDC:
    from mozilla_django_oidc import views as oidc_views

    # The sign-in round trip happens before there is a user, so it must be reachable without one.
    urlpatterns += [
        path(
            "oidc/authenticate/",
            login_not_required(oidc_views.OIDCAuthenticationRequestView.as_view()),
            name="oidc_authentication_init",
        ),
        path(
            "oidc/callback/",
            login_not_required(oidc_views.OIDCAuthenticationCallbackView.as_view()),
            name="oidc_authentication_callback",
        ),
    ]
