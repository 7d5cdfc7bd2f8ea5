from django.apps import AppConfig


class DeploymentsConfig(AppConfig):
    name = "apps.deployments"
    label = "deployments"
    verbose_name = "Deployments and environments"

    def ready(self) -> None:
        from apps.deployments.badges import TONES
        from apps.web.badges import register_badge_tones

        register_badge_tones(TONES)
        from apps.deployments.services.sweep import (
            KIND_ALIAS,
            KIND_REQUEST,
            deploy_requests_redrive,
            release_aliases_redrive,
        )
        from apps.jobs.handoff import register_redriver

        register_redriver(KIND_REQUEST, deploy_requests_redrive)
        register_redriver(KIND_ALIAS, release_aliases_redrive)
        # Deploy requests as an approvals subject, and the catalog model page's environment card.
        from apps.deployments import approval_subject, catalog_section  # noqa: F401
