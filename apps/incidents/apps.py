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
