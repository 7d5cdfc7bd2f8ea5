from django.urls import path

from apps.accounts import views

app_name = "accounts"
urlpatterns = [
    path("profile/", views.profile_view, name="profile"),
    path("tokens/", views.api_token_create_view, name="token-create"),
    path("tokens/<int:pk>/revoke/", views.api_token_revoke_view, name="token-revoke"),
    path("teams/", views.team_list_view, name="team-list"),
    path("teams/new/", views.team_create_view, name="team-create"),
    path("teams/<slug:slug>/", views.team_detail_view, name="team-detail"),
    path("teams/<slug:slug>/members/", views.team_member_add_view, name="team-member-add"),
    path(
        "teams/<slug:slug>/members/<int:pk>/role/",
        views.team_member_update_view,
        name="team-member-update",
    ),
    path(
        "teams/<slug:slug>/members/<int:pk>/remove/",
        views.team_member_remove_view,
        name="team-member-remove",
    ),
]
