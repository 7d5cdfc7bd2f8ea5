from django.urls import path

from apps.incidents.views import actions, pages

app_name = "incidents"
urlpatterns = [
    path("", pages.incident_list_view, name="incident-list"),
    path("new/", pages.incident_open_view, name="incident-open"),
    path("<int:pk>/", pages.incident_detail_view, name="incident-detail"),
    path("<int:pk>/timeline/", pages.incident_timeline_view, name="incident-timeline"),
    path("<int:pk>/changes/", pages.incident_changes_view, name="incident-changes"),
    path("<int:pk>/status/", actions.incident_status_view, name="incident-status"),
    path("<int:pk>/dismiss/", actions.incident_dismiss_view, name="incident-dismiss"),
    path("<int:pk>/severity/", actions.incident_severity_view, name="incident-severity"),
    path("<int:pk>/roles/", actions.incident_role_view, name="incident-role"),
    path("<int:pk>/notes/", actions.incident_note_view, name="incident-note"),
    path("<int:pk>/moments/", actions.incident_moments_view, name="incident-moments"),
    path(
        "<int:pk>/timeline/<int:entry_pk>/pin/",
        actions.timeline_entry_pin_view,
        name="timeline-entry-pin",
    ),
    path("<int:pk>/links/", actions.incident_link_view, name="incident-link"),
    path(
        "<int:pk>/links/<int:link_pk>/delete/", actions.incident_unlink_view, name="incident-unlink"
    ),
    path(
        "<int:pk>/releases/<int:release_pk>/rollback/",
        actions.incident_rollback_view,
        name="incident-rollback",
    ),
]
