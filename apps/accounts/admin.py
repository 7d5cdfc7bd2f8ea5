from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.http import HttpRequest

from apps.accounts.models import ApiToken, Membership, Team, User


@admin.register(User)
class PortalUserAdmin(UserAdmin):
    pass


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "created_at"]
    search_fields = ["name", "slug"]
    inlines = [MembershipInline]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are created by their owner on the profile page; the admin can only look."""

    list_display = ["name", "user", "prefix", "created_at", "expires_at", "revoked_at"]
    list_select_related = ["user"]
    readonly_fields = [f.name for f in ApiToken._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
