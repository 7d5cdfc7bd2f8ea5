from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "apps.catalog"
    label = "catalog"
    verbose_name = "Model catalog"

    def ready(self) -> None:
        from apps.catalog.badges import TONES
        from apps.web.badges import register_badge_tones

        register_badge_tones(TONES)
