from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "apps.accounts"
    label = "accounts"
    verbose_name = "Accounts and teams"

    def ready(self) -> None:
        from apps.accounts.badges import TONES
        from apps.web.badges import register_badge_tones

        register_badge_tones(TONES)
        from apps.accounts import signals  # noqa: F401  (connects the login audit receivers)
