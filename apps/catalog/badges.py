"""Badge tones of model cards (status and risk) and of MLflow's version statuses."""

from apps.catalog.models import ModelCard, ModelVersion

TONES: dict[str, str] = {
    ModelCard.Status.DRAFT: "",
    ModelCard.Status.IN_REVIEW: "info",
    ModelCard.Status.APPROVED: "ok",
    ModelCard.Risk.UNKNOWN: "",
    ModelCard.Risk.LOW: "ok",
    ModelCard.Risk.MEDIUM: "warn",
    ModelCard.Risk.HIGH: "danger",
    ModelVersion.Status.READY: "ok",
    ModelVersion.Status.PENDING_REGISTRATION: "info",
    ModelVersion.Status.FAILED_REGISTRATION: "danger",
}
