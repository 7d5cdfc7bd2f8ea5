"""Run the simulated Kubernetes API server for `make run` (see apps/simcluster)."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.deployments.demo import NAMESPACES
from apps.simcluster.controllers import Timing
from apps.simcluster.demo import SIMCLUSTER_PORT, SIMCLUSTER_TOKEN, kubeconfig_path
from apps.simcluster.server import SimCluster

BANNER = """\
==============================================================================
  SIMULATED Kubernetes API server (Modelport test and demo double)
  Nothing here is a real cluster: no pods run, no images are pulled.
  API:        {url}
  kubeconfig: {kubeconfig}
  state file: {state}
  speed:      {speed}x (pods start in {startup:g} simulated seconds)
  Inject failures with an image or storage URI containing fail-imagepull,
  fail-crashloop or fail-deadline, or the annotation sim.modelport.dev/fail.
=============================================================================="""


class Command(BaseCommand):
    help = "Run Modelport's SIMULATED Kubernetes API server on loopback (a test and demo double)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=SIMCLUSTER_PORT)
        parser.add_argument("--speed", type=float, default=1.0, help="simulated seconds per second")
        parser.add_argument("--pod-startup", type=float, default=8.0, help="simulated seconds")
        parser.add_argument("--state", type=Path, default=None, help="JSON file to keep state in")
        parser.add_argument("--no-state", action="store_true", help="keep state in memory only")
        parser.add_argument("--kubeconfig", type=Path, default=None, help="where to write one")
        parser.add_argument(
            "--namespace", action="append", default=[], help="extra namespaces to create"
        )
        parser.add_argument("--quiet", action="store_true", help="do not log each request")

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.PRODUCTION:
            raise CommandError(
                "simcluster is a test and demo double; not with PORTAL_ENV=production."
            )
        if options["host"] not in {"127.0.0.1", "localhost", "::1"}:
            raise CommandError("simcluster listens on loopback only.")
        state = (
            None
            if options["no_state"]
            else (options["state"] or Path(settings.VAR_DIR) / "kube" / "simcluster.json")
        )
        try:
            cluster = SimCluster(
                host=str(options["host"]),
                port=int(options["port"]),
                speed=float(options["speed"]),
                timing=Timing(pod_startup=float(options["pod_startup"])),
                namespaces=(*NAMESPACES, *options["namespace"]),
                state_file=state,
                token=SIMCLUSTER_TOKEN,
                log=None if options["quiet"] else self.stdout.write,
            )
        except OSError as exc:
            raise CommandError(f"Cannot listen on port {options['port']}: {exc.strerror}") from None
        config = cluster.write_kubeconfig(options["kubeconfig"] or kubeconfig_path())
        self.stdout.write(
            self.style.WARNING(
                BANNER.format(
                    url=cluster.url,
                    kubeconfig=config,
                    state=state or "memory only",
                    speed=options["speed"],
                    startup=options["pod_startup"],
                )
            )
        )
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        cluster.start()
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
        finally:
            cluster.stop()
            self.stdout.write("Simulated cluster stopped; state saved.")
