"""Environment verbs: invariants, audit events, and the demo seed."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from apps.audit.models import AuditEvent
from apps.deployments import services
from apps.deployments.demo import seed_environments
from apps.deployments.kube.client import Connection, describe_cluster
from apps.deployments.models import Environment
from apps.simcluster.demo import CONTEXT, kubeconfig_path, write_demo_kubeconfig
from tests.deployments.factories import EnvironmentFactory

pytestmark = pytest.mark.django_db


def test_create_writes_one_audit_event(staff) -> None:
    environment = services.environment_create(
        actor=staff, name="QA Cluster", order=15, namespace="models-qa", serving_kind="kserve"
    )
    assert environment.slug == "qa-cluster"
    event = AuditEvent.objects.get()
    assert (event.action, event.actor, event.object_id) == (
        "environment.created",
        staff,
        str(environment.pk),
    )
    assert event.data["namespace"] == "models-qa"


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({"cpu_request": "2", "cpu_limit": "500m"}, "cpu_request", "cannot be larger"),
        ({"memory_limit": "lots"}, "memory_limit", "not a Kubernetes quantity"),
        ({"connection": "in_cluster", "kubeconfig_path": "/x"}, "kubeconfig_path", "Leave empty"),
        ({"serving_kind": "deployment", "runtime_image": ""}, "runtime_image", "needs a model"),
        ({"replicas": 3, "max_replicas": 2}, "max_replicas", "at least the number"),
        ({"namespace": "Models_Prod"}, "namespace", "DNS-1123"),
    ],
)
def test_create_refuses_invalid_settings_and_saves_nothing(staff, values, field, message) -> None:
    base = {"order": 15, "namespace": "models-qa", "serving_kind": "kserve"}
    with pytest.raises(ValidationError) as caught:
        services.environment_create(actor=staff, name="qa", **{**base, **values})
    assert message in " ".join(caught.value.message_dict[field])
    assert not Environment.objects.exists()
    assert not AuditEvent.objects.exists()


def test_duplicate_order_is_a_validation_error(staff) -> None:
    EnvironmentFactory(order=10)
    with pytest.raises(ValidationError, match="Order already exists"):
        services.environment_create(actor=staff, name="qa", order=10, namespace="models")


def test_update_records_what_changed(staff) -> None:
    environment = EnvironmentFactory(replicas=1, max_replicas=1)
    services.environment_update(actor=staff, environment=environment, replicas=2, max_replicas=3)
    event = AuditEvent.objects.get()
    assert event.action == "environment.updated"
    assert event.data == {"changes": {"replicas": [1, 2], "max_replicas": [1, 3]}}


def test_update_without_change_writes_nothing(staff) -> None:
    environment = EnvironmentFactory()
    services.environment_update(actor=staff, environment=environment, replicas=environment.replicas)
    assert not AuditEvent.objects.exists()


def test_update_refuses_unknown_fields(staff) -> None:
    with pytest.raises(TypeError, match="created_at"):
        services.environment_update(actor=staff, environment=EnvironmentFactory(), created_at=None)


def test_seed_is_idempotent_and_points_at_the_simulated_cluster(settings, tmp_path) -> None:
    settings.VAR_DIR = tmp_path
    first = seed_environments(kubeconfig_path=write_demo_kubeconfig(), kube_context=CONTEXT)
    second = seed_environments(kubeconfig_path=write_demo_kubeconfig(), kube_context=CONTEXT)
    assert [env.slug for env in first] == ["dev", "staging", "production"]
    assert [env.pk for env in first] == [env.pk for env in second]
    assert AuditEvent.objects.filter(action="environment.created").count() == 3
    info = describe_cluster(Connection(str(kubeconfig_path()), "modelport-simulated"))
    assert info.simulated
    assert info.server == "http://127.0.0.1:8081"
    assert oct(kubeconfig_path().stat().st_mode & 0o777) == "0o600"
