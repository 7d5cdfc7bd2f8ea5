from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "apps.approvals"
    label = "approvals"
    verbose_name = "Approvals"

    def ready(self) -> None:
        from apps.approvals.badges import TONES
        from apps.web.badges import register_badge_tones

        register_badge_tones(TONES)
        from apps.approvals.notifications import KIND_NOTIFICATION, notifications_redrive
        from apps.approvals.services import KIND_EFFECT, approval_effects_redrive
        from apps.jobs.handoff import register_redriver

        register_redriver(KIND_EFFECT, approval_effects_redrive)
        register_redriver(KIND_NOTIFICATION, notifications_redrive)
        # Register what this app brings to the engine and to the catalog's hooks.
        from apps.approvals import catalog_checks, promotions, sections  # noqa: F401
