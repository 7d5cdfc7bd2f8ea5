"""The verbs of incidents: every state change, in a transaction, with its timeline entry and
its audit event."""

from apps.incidents.services.changes import (
    incident_change_link,
    incident_change_unlink,
    incident_rollback,
)
from apps.incidents.services.incidents import (
    Affected,
    incident_dismiss,
    incident_open,
    incident_role_set,
    incident_severity_set,
    incident_status_set,
    incident_update,
)
from apps.incidents.services.timeline import (
    deploy_events_copy,
    incident_note_add,
    timeline_entry_add,
    timeline_entry_pin,
)

__all__ = [
    "Affected",
    "deploy_events_copy",
    "incident_change_link",
    "incident_change_unlink",
    "incident_dismiss",
    "incident_note_add",
    "incident_open",
    "incident_role_set",
    "incident_rollback",
    "incident_severity_set",
    "incident_status_set",
    "incident_update",
    "timeline_entry_add",
    "timeline_entry_pin",
]
