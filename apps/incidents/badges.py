"""Badge tones of incident statuses and severities."""

from apps.incidents.models import IncidentStatus, Severity, TimelineKind

TONES: dict[str, str] = {
    IncidentStatus.DRAFT: "",  # as a draft model card
    IncidentStatus.INVESTIGATING: "danger",
    IncidentStatus.IDENTIFIED: "warn",
    IncidentStatus.MONITORING: "info",
    IncidentStatus.RESOLVED: "ok",
    IncidentStatus.CLOSED: "",  # as a closed promotion
    IncidentStatus.DISMISSED: "",
    Severity.SEV1: "danger",
    Severity.SEV2: "danger",
    Severity.SEV3: "warn",
    Severity.SEV4: "info",
    TimelineKind.ALERT_FIRING: "danger",
    TimelineKind.ALERT_RESOLVED: "ok",
    TimelineKind.ROLLBACK: "warn",
}
