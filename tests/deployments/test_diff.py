"""The diff shown before apply: live object against a dry-run server-side apply."""

from apps.deployments.kube import diff, manifests
from apps.deployments.kube.client import KubeClient
from tests.fixtures.cluster import NAMESPACE

TARGET = manifests.Target(
    environment="dev",
    namespace=NAMESPACE,
    serving_kind=manifests.DEPLOYMENT,
    runtime_image="docker.io/seldonio/mlserver:1.6.1-mlflow",
)


def render(version: str) -> list[dict]:
    return manifests.render(manifests.ModelRef("Churn", version, f"s3://a/churn/{version}"), TARGET)


def test_plan_for_new_objects_is_create_and_changes_nothing(kube: KubeClient) -> None:
    plans = diff.plan(kube, render("1"))
    assert [(p.kind, p.action) for p in plans] == [("Deployment", "create"), ("Service", "create")]
    assert plans[0].text.startswith("--- /dev/null\n+++ planned Deployment/churn\n")
    assert kube.get_or_none("apps/v1", "Deployment", NAMESPACE, "churn") is None


def test_plan_after_apply_is_unchanged_despite_server_defaults(kube: KubeClient) -> None:
    for obj in render("1"):
        kube.apply(obj)
    assert [p.action for p in diff.plan(kube, render("1"))] == ["unchanged", "unchanged"]


def test_plan_for_a_new_version_shows_only_what_changes(kube: KubeClient) -> None:
    for obj in render("1"):
        kube.apply(obj)
    deployment_plan = diff.plan(kube, render("2"))[0]
    assert deployment_plan.action == "update"
    removed = [line for line in deployment_plan.text.splitlines() if line.startswith("-  ")]
    added = [line for line in deployment_plan.text.splitlines() if line.startswith("+  ")]
    assert "-          value: s3://a/churn/1" in removed
    assert "+          value: s3://a/churn/2" in added
    assert not any("resourceVersion" in line or "managedFields" in line for line in removed + added)


def test_diff_objects_ignores_status_and_bookkeeping() -> None:
    live = {
        "kind": "Service",
        "metadata": {"name": "a", "resourceVersion": "9", "uid": "u"},
        "spec": {"type": "ClusterIP"},
        "status": {"loadBalancer": {}},
    }
    planned = {
        "kind": "Service",
        "metadata": {"name": "a", "resourceVersion": "10"},
        "spec": {"type": "ClusterIP"},
    }
    assert diff.diff_objects(live, planned).action == "unchanged"
