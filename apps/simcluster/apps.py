from django.apps import AppConfig


class SimclusterConfig(AppConfig):
    name = "apps.simcluster"
    label = "simcluster"
    verbose_name = "Simulated Kubernetes API server (test and demo double)"
