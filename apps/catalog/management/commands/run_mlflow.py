"""`manage.py run_mlflow`: the local MLflow for `make run`, seeded and wired to the portal."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.catalog.mlflow_server import start_mlflow_server, stop_mlflow_server


class Command(BaseCommand):
    help = (
        "Start a local MLflow tracking server (SQLite under var/mlflow/), log the demo models "
        "into it once, register the portal's webhook, queue a full catalog sync, then keep "
        "serving until stopped. Development only."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--port", type=int, default=5000)
        parser.add_argument("--no-seed", action="store_true", help="Do not log demo models.")

    def handle(self, *args: Any, port: int, no_seed: bool, **options: Any) -> None:
        if settings.PRODUCTION:
            raise CommandError(
                "run_mlflow is for development; run MLflow separately in production."
            )
        local = f"http://127.0.0.1:{port}"
        if settings.MLFLOW_TRACKING_URI and local != settings.MLFLOW_TRACKING_URI:
            # Procfile runs this process either way; with an external registry it only waits.
            self.stdout.write(
                f"Using the MLflow at {settings.MLFLOW_TRACKING_URI}; none started here."
            )
            signal.pause()
            return
        data_dir = Path(settings.VAR_DIR) / "mlflow"
        data_dir.mkdir(parents=True, exist_ok=True)
        self.stdout.write(f"Starting MLflow on http://127.0.0.1:{port} (data in {data_dir}) …")
        process = start_mlflow_server(
            port=port, data_dir=data_dir, log_path=data_dir / "server.log"
        )

        def stop(*_: object) -> None:
            stop_mlflow_server(process)
            raise SystemExit(0)

        signal.signal(signal.SIGTERM, stop)
        try:
            self._prepare(f"http://127.0.0.1:{port}", seed=not no_seed)
            self.stdout.write(self.style.SUCCESS(f"MLflow is serving on http://127.0.0.1:{port}"))
            process.wait()
        except KeyboardInterrupt:
            pass
        finally:
            stop_mlflow_server(process)

    def _prepare(self, uri: str, *, seed: bool) -> None:
        from apps.catalog.registry import Registry, RegistryError
        from apps.catalog.tasks import registry_sync_task

        if seed:
            from apps.catalog.demo import seed_registry

            created = seed_registry(uri)
            self.stdout.write(f"Demo models logged: {', '.join(created) or 'already there'}")
        try:
            hook_id, created_hook = Registry(uri).ensure_webhook(
                url=f"{settings.PORTAL_BASE_URL}/hooks/mlflow/",
                secret=settings.MLFLOW_WEBHOOK_SECRET,
            )
            self.stdout.write(f"Webhook {'created' if created_hook else 'updated'}: {hook_id}")
        except RegistryError as exc:
            self.stderr.write(f"Could not register the webhook ({exc}); syncs will still run.")
        registry_sync_task.delay("full", "run_mlflow")
