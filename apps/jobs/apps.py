from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "apps.jobs"
    label = "jobs"
    verbose_name = "Background work"

    def ready(self) -> None:
        from prometheus_client import REGISTRY

        from apps.jobs.handoff import RedriveCollector

        REGISTRY.register(RedriveCollector())
