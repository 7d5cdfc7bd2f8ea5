"""Make var/ for a development checkout: its folders and the secrets kept there (`make run`)."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from portal.env import write_kept_secret


class Command(BaseCommand):
    help = "Create var/ (static, kube) and the development secrets kept there, if missing."

    def handle(self, *args: object, **options: object) -> None:
        if settings.PRODUCTION:
            raise CommandError(
                "setup_var is for development; production takes its secrets from the environment."
            )
        var = Path(settings.VAR_DIR)
        # STATIC_ROOT is None where nothing is collected (the test settings).
        static = [Path(settings.STATIC_ROOT)] if settings.STATIC_ROOT else []
        for folder in (var, *static, *settings.QUEUE_FOLDERS):
            folder.mkdir(parents=True, exist_ok=True)
        for name in ("secret_key", "mlflow_webhook_secret"):
            if write_kept_secret(var / name):
                self.stdout.write(f"Generated {var / name}")
