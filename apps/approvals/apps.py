from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "apps.approvals"
    label = "approvals"
    verbose_name = "Approvals"

    def ready(self) -> None:
        from apps.approvals.badges import TONES
        from apps.web.badges import register_badge_tones

        register_badge_tones(TONES)
        # Register what this app brings to the engine and to the catalog's hooks.
        from apps.approvals import catalog_checks, promotions, sections  # noqa: F401
