from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "apps.catalog"
    label = "catalog"
    verbose_name = "Model catalog"

    def ready(self) -> None:
        from apps.catalog.badges import TONES
        from apps.web.badges import register_badge_tones

        register_badge_tones(TONES)
        from apps.catalog.webhooks import KIND_DELIVERY, webhook_deliveries_redrive
        from apps.jobs.handoff import register_redriver

        register_redriver(KIND_DELIVERY, webhook_deliveries_redrive)
