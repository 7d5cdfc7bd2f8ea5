"""Rollouts played out by the simulator's controllers, judged by status.py, over simulated time."""

from __future__ import annotations

import pytest

from apps.deployments.kube import manifests
from apps.deployments.kube.client import KubeClient
from apps.deployments.kube.status import FAILED, SUCCEEDED, RolloutStatus, rollout_status
from apps.simcluster.server import SimCluster
from tests.fixtures.cluster import NAMESPACE

PLAIN = manifests.Target(
    environment="dev",
    namespace=NAMESPACE,
    serving_kind=manifests.DEPLOYMENT,
    runtime_image="docker.io/seldonio/mlserver:1.6.1-mlflow",
    replicas=2,
    max_replicas=2,
    progress_deadline_seconds=60,
)
STANDARD = manifests.Target(environment="staging", namespace=NAMESPACE)
KNATIVE = manifests.Target(
    environment="prod", namespace=NAMESPACE, kserve_mode="Knative", progress_deadline_seconds=60
)


def roll_out(
    sim: SimCluster,
    kube: KubeClient,
    objects: list[dict],
    *,
    limit: int = 900,
    baseline: str | None = None,
    canary: int | None = None,
) -> tuple[RolloutStatus, int]:
    """Apply, then check every 5 simulated seconds until done; the verdict and seconds taken."""
    for obj in objects:
        kube.apply(obj)
    name = objects[0]["metadata"]["name"]
    for elapsed in range(5, limit + 5, 5):
        sim.advance(5)
        live = [
            kube.get(obj["apiVersion"], obj["kind"], NAMESPACE, name)
            for obj in objects
            if obj["kind"] != "Service"
        ]
        predictor = kube.get_or_none("apps/v1", "Deployment", NAMESPACE, f"{name}-predictor")
        verdict = rollout_status(
            live + ([predictor] if predictor else []),
            events=kube.list_events(NAMESPACE),
            baseline_revision=baseline,
            canary_percent=canary,
        )
        if verdict.done:
            return verdict, elapsed
    return verdict, limit


def model(version: str = "1", uri: str = "") -> manifests.ModelRef:
    return manifests.ModelRef("Churn", version, uri or f"s3://artifacts/churn/{version}")


@pytest.mark.parametrize(
    "target", [PLAIN, STANDARD, KNATIVE], ids=["deployment", "standard", "knative"]
)
def test_healthy_rollout_succeeds_within_simulated_time(sim, kube, target) -> None:
    verdict, seconds = roll_out(sim, kube, manifests.render(model(), target))
    assert verdict.phase == SUCCEEDED, verdict.reason
    assert seconds <= 30


def test_new_version_rolls_through_and_keeps_the_old_revision_for_rollback(sim, kube) -> None:
    roll_out(sim, kube, manifests.render(model("1"), PLAIN))
    verdict, _ = roll_out(sim, kube, manifests.render(model("2"), PLAIN))
    assert verdict.phase == SUCCEEDED
    live = kube.get("apps/v1", "Deployment", NAMESPACE, "churn")
    assert live["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    sets = kube.list("apps/v1", "ReplicaSet", NAMESPACE)
    revisions = {
        rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]: rs["spec"]["replicas"]
        for rs in sets
    }
    assert revisions == {"1": 0, "2": 2}
    # Rolling back is applying the old version again: its ReplicaSet comes back as revision 3.
    verdict, _ = roll_out(sim, kube, manifests.render(model("1"), PLAIN))
    assert verdict.phase == SUCCEEDED
    live = kube.get("apps/v1", "Deployment", NAMESPACE, "churn")
    assert live["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    assert len(kube.list("apps/v1", "ReplicaSet", NAMESPACE)) == 2


def test_knative_canary_gets_its_share_then_promotion_takes_all(sim, kube) -> None:
    roll_out(sim, kube, manifests.render(model("1"), KNATIVE))
    baseline = "churn-predictor-00001"
    canary = manifests.render(
        model("2"), KNATIVE, manifests.RenderOptions(canary_traffic_percent=20)
    )
    verdict, _ = roll_out(sim, kube, canary, baseline=baseline, canary=20)
    assert (verdict.phase, verdict.reason) == (
        SUCCEEDED,
        "Revision churn-predictor-00002 is serving with 20 % of traffic (canary).",
    )
    promote = manifests.render(model("2"), KNATIVE)
    verdict, _ = roll_out(sim, kube, promote)
    assert verdict.reason == "Revision churn-predictor-00002 is serving."
    live = kube.get("serving.kserve.io/v1beta1", "InferenceService", NAMESPACE, "churn")
    assert live["status"]["components"]["predictor"]["previousRolledoutRevision"] == baseline


FAILURES = [
    ("fail-imagepull", "Back-off pulling image"),
    ("fail-crashloop", "Back-off restarting failed container"),
    ("fail-deadline", "Readiness probe failed"),
]


@pytest.mark.parametrize(("marker", "cause"), FAILURES, ids=[m for m, _ in FAILURES])
def test_injected_failure_fails_the_plain_rollout_with_its_reason(sim, kube, marker, cause) -> None:
    target = manifests.Target(
        **{**vars(PLAIN), "runtime_image": f"registry.example/mlserver:{marker}"}
    )
    verdict, seconds = roll_out(sim, kube, manifests.render(model(), target))
    assert (verdict.phase, verdict.code) == (FAILED, "ProgressDeadlineExceeded")
    assert cause in verdict.reason
    assert 60 < seconds <= 75  # the environment's progress deadline, not sooner


@pytest.mark.parametrize(
    ("marker", "code", "text"),
    [
        ("fail-imagepull", "RevisionFailed", "Unable to fetch image"),
        ("fail-crashloop", "ModelLoadFailed", "BlockedByFailedLoad"),
        ("fail-deadline", "ProgressDeadlineExceeded", "Initial scale was never achieved"),
    ],
)
def test_injected_failure_fails_the_knative_rollout_with_its_reason(
    sim, kube, marker, code, text
) -> None:
    objects = manifests.render(model(uri=f"s3://artifacts/{marker}/1"), KNATIVE)
    verdict, _ = roll_out(sim, kube, objects)
    assert (verdict.phase, verdict.code) == (FAILED, code)
    assert text in verdict.reason


def test_crash_loop_in_standard_mode_fails_as_a_model_load_failure(sim, kube) -> None:
    annotated = manifests.render(model(), STANDARD)
    annotated[0]["metadata"]["annotations"]["sim.modelport.dev/fail"] = "crashloop"
    verdict, seconds = roll_out(sim, kube, annotated)
    assert (verdict.phase, verdict.code) == (FAILED, "ModelLoadFailed")
    assert "Back-off restarting failed container kserve-container" in verdict.reason
    assert seconds < 120


def test_failed_standard_rollout_keeps_the_old_version_serving(sim, kube) -> None:
    roll_out(sim, kube, manifests.render(model("1"), PLAIN))
    broken = manifests.Target(
        **{**vars(PLAIN), "runtime_image": "registry.example/x:fail-imagepull"}
    )
    verdict, _ = roll_out(sim, kube, manifests.render(model("2"), broken))
    assert verdict.phase == FAILED
    live = kube.get("apps/v1", "Deployment", NAMESPACE, "churn")
    # maxUnavailable 0: the old pods stay until new ones are ready, so nothing stopped serving.
    assert live["status"]["availableReplicas"] == 2
