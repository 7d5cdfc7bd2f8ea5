from django.apps import AppConfig


class IncidentsConfig(AppConfig):
    name = "apps.incidents"
    label = "incidents"
    verbose_name = "Incidents"

    def ready(self) -> None:
        from apps.incidents.badges import TONES
        from apps.web.badges import register_badge_tones

        register_badge_tones(TONES)
        # Drafts for failed rollouts, and linked requests followed onto the timeline.
        from apps.incidents import deploy_listener  # noqa: F401

        # Alertmanager notifications not applied are handed to a worker again by beat.
        from apps.incidents.alerts import KIND_ALERT_DELIVERY, alert_deliveries_redrive
        from apps.jobs.handoff import register_redriver

        register_redriver(KIND_ALERT_DELIVERY, alert_deliveries_redrive)
