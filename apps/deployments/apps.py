from django.apps import AppConfig


class DeploymentsConfig(AppConfig):
    name = "apps.deployments"
    label = "deployments"
    verbose_name = "Deployments and environments"

    def ready(self) -> None:
        from apps.deployments.badges import TONES
        from apps.web.badges import register_badge_tones

        register_badge_tones(TONES)
        # Deploy requests as an approvals subject, and the catalog model page's environment card.
        from apps.deployments import approval_subject, catalog_section  # noqa: F401
