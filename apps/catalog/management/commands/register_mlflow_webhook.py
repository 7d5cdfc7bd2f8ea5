from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.catalog.registry import Registry, RegistryError


class Command(BaseCommand):
    help = "Create or update the portal's webhook in MLflow (events, URL and signing secret)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--url",
            default="",
            help="Where MLflow should deliver; default PORTAL_BASE_URL + /hooks/mlflow/.",
        )

    def handle(self, *args: Any, url: str, **options: Any) -> None:
        if not settings.MLFLOW_WEBHOOK_SECRET:
            raise CommandError("Set MLFLOW_WEBHOOK_SECRET first: MLflow signs deliveries with it.")
        target = url or f"{settings.PORTAL_BASE_URL}/hooks/mlflow/"
        try:
            hook_id, created = Registry().ensure_webhook(
                url=target, secret=settings.MLFLOW_WEBHOOK_SECRET
            )
        except RegistryError as exc:
            raise CommandError(str(exc)) from exc
        verb = "Created" if created else "Updated"
        self.stdout.write(self.style.SUCCESS(f"{verb} webhook {hook_id} → {target}"))
