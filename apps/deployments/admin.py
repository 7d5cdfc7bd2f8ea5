from django.contrib import admin

from apps.deployments.models import Environment


@admin.register(Environment)
class EnvironmentAdmin(admin.ModelAdmin):
    """Read-only here: changes go through the portal's pages or API, which audit them."""

    list_display = ["name", "slug", "order", "serving_kind", "namespace", "updated_at"]
    search_fields = ["name", "slug", "namespace"]
    readonly_fields = [f.name for f in Environment._meta.fields]

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False
