"""Where `make run`'s simulated cluster listens, and the kubeconfig that points at it."""

from __future__ import annotations

import os
from pathlib import Path

from django.conf import settings

from apps.simcluster.server import CONTEXT, kubeconfig_for, write_kubeconfig

SIMCLUSTER_PORT = int(os.environ.get("SIMCLUSTER_PORT", "8081"))
SIMCLUSTER_TOKEN = "modelport-simulated-token"  # noqa: S105  (loopback demo server, no secret)
__all__ = ["CONTEXT", "SIMCLUSTER_PORT", "SIMCLUSTER_TOKEN", "kubeconfig_path"]


def kubeconfig_path() -> Path:
    return Path(settings.VAR_DIR) / "kube" / "config"


def write_demo_kubeconfig() -> Path:
    """The kubeconfig `manage.py simcluster` serves; written whether or not it is running."""
    server = f"http://127.0.0.1:{SIMCLUSTER_PORT}"
    return write_kubeconfig(kubeconfig_path(), kubeconfig_for(server, token=SIMCLUSTER_TOKEN))
