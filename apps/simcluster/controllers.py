"""Simulated controllers: everything that moves on its own in the simulated cluster.

They run once per simulated second and write what the real ones would: ReplicaSets with revision
numbers, replica counts, `observedGeneration` one step behind, the Progressing and Available
conditions (including `ProgressDeadlineExceeded`), InferenceService conditions, revisions and
traffic, and Warning events for the injected failures.

Failures are injected by a marker in an image or storage URI (`fail-imagepull`, `fail-crashloop`,
`fail-deadline`) or the annotation `sim.modelport.dev/fail: imagepull|crashloop|deadline`.
"""

from __future__ import annotations

from apps.simcluster.common import Timing, injected_failure
from apps.simcluster.kserve import KServeController
from apps.simcluster.store import Store
from apps.simcluster.workloads import DeploymentController

__all__ = ["Controllers", "Timing", "injected_failure"]


class Controllers:
    """KServe first (it writes predictor Deployments), then the Deployment controller."""

    def __init__(self, store: Store, timing: Timing | None = None) -> None:
        self.store = store
        self.timing = timing or Timing()
        self.kserve = KServeController(store, self.timing)
        self.deployments = DeploymentController(store, self.timing)

    def step(self, now: float) -> None:
        with self.store.lock:
            self.kserve.step(now)
            self.deployments.step(now)
