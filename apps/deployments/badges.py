"""Badge tones of the deployments app's states, health, event levels and plan actions."""

from apps.deployments.connection import FAILED, OK
from apps.deployments.kube.diff import CREATE, UNCHANGED, UPDATE
from apps.deployments.models import DeployEvent, DeployRequest, Release

State, Health, Level = DeployRequest.State, Release.Health, DeployEvent.Level

TONES: dict[str, str] = {
    State.PENDING_APPROVAL: "warn",
    State.QUEUED: "info",
    State.APPLYING: "accent",
    State.ROLLING_OUT: "accent",
    State.SUCCEEDED: "ok",
    State.FAILED: "danger",
    State.ROLLED_BACK: "warn",
    State.CANCELLED: "",
    State.REJECTED: "danger",
    Health.HEALTHY: "ok",
    Health.PROGRESSING: "info",
    Health.FAILING: "danger",
    Health.MISSING: "danger",
    Health.UNREACHABLE: "warn",
    Level.INFO: "",
    Level.WARNING: "warn",
    Level.ERROR: "danger",
    DeployEvent.Kind.KUBERNETES: "info",
    CREATE: "info",
    UPDATE: "warn",
    UNCHANGED: "",
    OK: "ok",
    FAILED: "danger",
}
