"""The simulated cluster itself: state that survives a restart, discovery, credentials, and an
outage (going offline and back on the same port)."""

from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes import dynamic

from apps.deployments.kube import manifests
from apps.deployments.kube.client import (
    Connection,
    KubeClient,
    KubeError,
    KubeUnreachableError,
)
from apps.simcluster.server import SimCluster

TARGET = manifests.Target(environment="dev", namespace="models")
MODEL = manifests.ModelRef("Churn", "1", "s3://a/churn/1")


def test_state_file_survives_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "sim.json"
    with SimCluster(manual_clock=True, namespaces=("models",), state_file=state) as first:
        config = first.write_kubeconfig(tmp_path / "config")
        with KubeClient.connect(Connection(str(config))) as kube:
            applied = kube.apply(manifests.render(MODEL, TARGET)[0])
        first.advance(10)
    with SimCluster(manual_clock=True, state_file=state) as second:
        config = second.write_kubeconfig(tmp_path / "config")
        with KubeClient.connect(Connection(str(config))) as kube:
            live = kube.get("serving.kserve.io/v1beta1", "InferenceService", "models", "churn")
            assert live["metadata"]["uid"] == applied["metadata"]["uid"]
            assert live["status"]["conditions"]
            # Resource versions keep growing: a client's cached version is never reused.
            assert int(
                kube.apply(
                    {
                        **live,
                        "metadata": {"name": "churn", "namespace": "models", "labels": {"a": "b"}},
                        "spec": live["spec"],
                    }
                )["metadata"]["resourceVersion"]
            ) > int(live["metadata"]["resourceVersion"])


def test_dynamic_client_discovers_the_served_kinds(
    sim: SimCluster, kube: KubeClient, tmp_path: Path
) -> None:
    client = dynamic.DynamicClient(kube.api, cache_file=str(tmp_path / "discovery.json"))
    isvc = client.resources.get(api_version="serving.kserve.io/v1beta1", kind="InferenceService")
    assert isvc.namespaced
    deployments = client.resources.get(api_version="apps/v1", kind="Deployment")
    assert deployments.get(namespace="models").items == []


def test_unknown_token_is_refused(sim: SimCluster, tmp_path: Path) -> None:
    config = sim.write_kubeconfig(tmp_path / "config")
    config.write_text(config.read_text().replace(sim.token, "forged"))
    with KubeClient.connect(Connection(str(config))) as kube, pytest.raises(KubeError) as caught:
        kube.read_namespace("models")
    assert (caught.value.status, caught.value.reason) == (401, "Unauthorized")


def test_going_offline_refuses_even_kept_alive_connections_and_coming_back_keeps_the_state(
    sim: SimCluster, kube: KubeClient
) -> None:
    kube.sleep = lambda seconds: None  # the client's own retries, without waiting
    kube.apply(manifests.render(MODEL, TARGET)[0])  # the client now holds an open connection
    url = sim.url
    sim.go_offline()
    with pytest.raises(KubeUnreachableError, match="connection refused"):
        kube.read_namespace("models")
    sim.go_offline()  # twice is harmless
    sim.go_online()
    assert sim.url == url
    live = kube.get("serving.kserve.io/v1beta1", "InferenceService", "models", "churn")
    assert live["metadata"]["name"] == "churn"
