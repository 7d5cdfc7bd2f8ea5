from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest

from apps.deployments.models import (
    DeployFreeze,
    DeployRequest,
    Environment,
    ProtectionRules,
    Release,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Read-only here: changes go through the portal's pages or API, which audit them."""

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> list[str]:
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(Environment)
class EnvironmentAdmin(ReadOnlyAdmin):
    list_display = ["name", "slug", "order", "serving_kind", "namespace", "updated_at"]
    search_fields = ["name", "slug", "namespace"]


@admin.register(ProtectionRules)
class ProtectionRulesAdmin(ReadOnlyAdmin):
    list_display = ["environment", "required_approvals", "requires_previous_environment"]


@admin.register(DeployFreeze)
class DeployFreezeAdmin(ReadOnlyAdmin):
    list_display = ["environment", "reason", "starts_at", "ends_at", "lifted_at"]


@admin.register(DeployRequest)
class DeployRequestAdmin(ReadOnlyAdmin):
    list_display = ["id", "model", "version", "environment", "kind", "state", "created_at"]
    list_filter = ["state", "kind", "environment"]
    list_select_related = ["model", "version", "environment"]
    search_fields = ["model__name"]


@admin.register(Release)
class ReleaseAdmin(ReadOnlyAdmin):
    list_display = ["model", "version", "environment", "live_from", "live_until", "health"]
    list_filter = ["environment", "health"]
    list_select_related = ["model", "version", "environment"]
    search_fields = ["model__name"]
