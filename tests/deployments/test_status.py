"""status.py on recorded real-shaped objects: every outcome, a lagging observedGeneration too."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from apps.deployments.kube.status import (
    FAILED,
    PROGRESSING,
    SUCCEEDED,
    deployment_status,
    inference_service_status,
    rollout_status,
    with_deadline,
)

# A Deployment as `kubectl get deploy -o json` shows it after a finished rollout (trimmed).
DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {
        "name": "churn",
        "namespace": "models",
        "generation": 3,
        "annotations": {"deployment.kubernetes.io/revision": "2"},
    },
    "spec": {"replicas": 2},
    "status": {
        "observedGeneration": 3,
        "replicas": 2,
        "updatedReplicas": 2,
        "readyReplicas": 2,
        "availableReplicas": 2,
        "conditions": [
            {
                "type": "Available",
                "status": "True",
                "reason": "MinimumReplicasAvailable",
                "message": "Deployment has minimum availability.",
            },
            {
                "type": "Progressing",
                "status": "True",
                "reason": "NewReplicaSetAvailable",
                "message": 'ReplicaSet "churn-5d8f7c9b6d" has successfully progressed.',
            },
        ],
    },
}


def deployment(**status: Any) -> dict[str, Any]:
    obj = copy.deepcopy(DEPLOYMENT)
    obj["status"].update(status)
    return obj


def progressing_condition(reason: str, value: str = "True", message: str = "") -> list[dict]:
    return [
        DEPLOYMENT["status"]["conditions"][0],
        {"type": "Progressing", "status": value, "reason": reason, "message": message},
    ]


IMAGE_PULL_EVENT = {
    "type": "Warning",
    "reason": "BackOff",
    "message": 'Back-off pulling image "mlserver:typo"',
    "involvedObject": {"kind": "Pod", "name": "churn-5d8f7c9b6d-x7k2p"},
}


@pytest.mark.parametrize(
    ("obj", "phase", "text"),
    [
        (deployment(), SUCCEEDED, "successfully rolled out"),
        (
            deployment(observedGeneration=2),
            PROGRESSING,
            "Waiting for deployment spec update to be observed",
        ),
        (
            deployment(updatedReplicas=1, conditions=progressing_condition("ReplicaSetUpdated")),
            PROGRESSING,
            "1 of 2 new replicas have been updated",
        ),
        (deployment(replicas=3), PROGRESSING, "1 old replicas are pending termination"),
        (deployment(availableReplicas=1), PROGRESSING, "1 of 2 updated replicas are available"),
        (
            deployment(
                availableReplicas=0,
                conditions=progressing_condition(
                    "ProgressDeadlineExceeded",
                    "False",
                    'ReplicaSet "churn-5d8f7c9b6d" has timed out progressing.',
                ),
            ),
            FAILED,
            "exceeded its progress deadline",
        ),
    ],
    ids=["complete", "generation-lag", "updating", "old-terminating", "unavailable", "deadline"],
)
def test_deployment_follows_kubectl_rollout_status(obj, phase, text) -> None:
    result = deployment_status(obj)
    assert result.phase == phase
    assert text in result.reason


def test_generation_lag_wins_over_stale_deadline_condition() -> None:
    # A new spec after a failed rollout: the old ProgressDeadlineExceeded is not yet re-evaluated.
    obj = deployment(
        observedGeneration=2,
        conditions=progressing_condition("ProgressDeadlineExceeded", "False", "timed out"),
    )
    assert deployment_status(obj).phase == PROGRESSING


def test_deployment_reason_names_the_likely_cause_from_events() -> None:
    obj = deployment(
        availableReplicas=0,
        conditions=progressing_condition("ProgressDeadlineExceeded", "False", "timed out."),
    )
    result = deployment_status(obj, events=[IMAGE_PULL_EVENT])
    assert result.code == "ProgressDeadlineExceeded"
    assert result.reason.endswith('(last warning: BackOff: Back-off pulling image "mlserver:typo")')


def test_deployment_revision_mismatch_fails() -> None:
    result = deployment_status(deployment(), revision="3")
    assert (result.phase, result.code) == (FAILED, "RevisionMismatch")


def test_replica_failure_is_reported_while_waiting() -> None:
    obj = deployment(availableReplicas=1)
    obj["status"]["conditions"].append(
        {
            "type": "ReplicaFailure",
            "status": "True",
            "reason": "FailedCreate",
            "message": 'pods "churn-x" is forbidden: exceeded quota',
        }
    )
    result = deployment_status(obj)
    assert result.phase == PROGRESSING
    assert "FailedCreate: pods" in result.reason


ISVC: dict[str, Any] = {
    "apiVersion": "serving.kserve.io/v1beta1",
    "kind": "InferenceService",
    "metadata": {
        "name": "churn",
        "namespace": "models",
        "generation": 2,
        "annotations": {"serving.kserve.io/deploymentMode": "Knative"},
    },
    "spec": {"predictor": {"model": {"modelFormat": {"name": "mlflow"}}}},
    "status": {
        "conditions": [
            {"type": t, "status": "True"}
            for t in (
                "IngressReady",
                "LatestDeploymentReady",
                "PredictorConfigurationReady",
                "PredictorReady",
                "PredictorRouteReady",
                "Ready",
                "RoutesReady",
            )
        ],
        "components": {
            "predictor": {
                "latestCreatedRevision": "churn-predictor-00002",
                "latestReadyRevision": "churn-predictor-00002",
                "latestRolledoutRevision": "churn-predictor-00002",
                "previousRolledoutRevision": "churn-predictor-00001",
                "traffic": [
                    {
                        "revisionName": "churn-predictor-00002",
                        "percent": 100,
                        "latestRevision": True,
                        "tag": "latest",
                    }
                ],
            }
        },
        "modelStatus": {
            "transitionStatus": "UpToDate",
            "states": {"activeModelState": "Loaded", "targetModelState": "Loaded"},
        },
    },
}


def isvc(
    *, mode: str = "Knative", conditions_override: dict | None = None, **status: Any
) -> dict[str, Any]:
    obj = copy.deepcopy(ISVC)
    obj["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] = mode
    obj["status"].update(status)
    changed = conditions_override or {}
    for condition in obj["status"]["conditions"]:
        status_value, reason = changed.get(condition["type"], (condition["status"], ""))
        condition.update(status=status_value, reason=reason, message=f"{reason} detail")
    return obj


def test_knative_new_revision_serving_everything_succeeds() -> None:
    result = inference_service_status(isvc(), baseline_revision="churn-predictor-00001")
    assert (result.phase, result.reason) == (
        SUCCEEDED,
        "Revision churn-predictor-00002 is serving.",
    )


def test_knative_old_ready_revision_says_nothing_about_the_new_spec() -> None:
    result = inference_service_status(isvc(), baseline_revision="churn-predictor-00002")
    assert (result.phase, result.code) == (PROGRESSING, "NoNewRevision")


def test_knative_latest_revision_not_ready_yet() -> None:
    obj = isvc()
    obj["status"]["components"]["predictor"]["latestReadyRevision"] = "churn-predictor-00001"
    result = inference_service_status(obj, baseline_revision="churn-predictor-00001")
    assert (result.phase, result.code) == (PROGRESSING, "RevisionNotReady")


def test_knative_canary_step_succeeds_at_its_share() -> None:
    obj = isvc()
    obj["status"]["components"]["predictor"]["traffic"] = [
        {"revisionName": "churn-predictor-00002", "percent": 10, "latestRevision": True},
        {"revisionName": "churn-predictor-00001", "percent": 90, "latestRevision": False},
    ]
    assert inference_service_status(obj, canary_percent=10).phase == SUCCEEDED
    assert inference_service_status(obj).code == "TrafficShifting"


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"LatestDeploymentReady": ("False", "RevisionFailed")}, "RevisionFailed"),
        ({"PredictorReady": ("False", "ProgressDeadlineExceeded")}, "ProgressDeadlineExceeded"),
    ],
)
def test_knative_failed_conditions_fail(changes, code) -> None:
    result = inference_service_status(isvc(conditions_override=changes))
    assert (result.phase, result.code) == (FAILED, code)


def test_model_that_fails_to_load_fails() -> None:
    obj = isvc(
        modelStatus={
            "transitionStatus": "BlockedByFailedLoad",
            "states": {"activeModelState": "", "targetModelState": "FailedToLoad"},
            "lastFailureInfo": {"reason": "ModelLoadFailed", "message": "no MLmodel file."},
        }
    )
    result = inference_service_status(obj)
    assert (result.phase, result.code) == (FAILED, "ModelLoadFailed")
    assert "ModelLoadFailed: no MLmodel file" in result.reason


def test_standard_mode_starting_pods_is_not_a_failure() -> None:
    obj = isvc(mode="Standard", conditions_override={
        "PredictorReady": ("False", "MinimumReplicasUnavailable"),
        "Ready": ("False", "MinimumReplicasUnavailable"),
    })  # fmt: skip
    assert inference_service_status(obj).phase == PROGRESSING


def test_standard_mode_deadline_fails() -> None:
    obj = isvc(mode="Standard", conditions_override={
        "PredictorReady": ("False", "ProgressDeadlineExceeded"),
    })  # fmt: skip
    assert inference_service_status(obj).code == "ProgressDeadlineExceeded"


def test_standard_mode_waits_for_the_predictor_deployment() -> None:
    predictor = deployment(observedGeneration=2)
    result = rollout_status([isvc(mode="Standard"), predictor])
    assert result.phase == PROGRESSING
    assert result.reason.startswith("Predictor: Waiting for deployment spec update")
    assert rollout_status([isvc(mode="Standard"), deployment()]).phase == SUCCEEDED


def test_isvc_without_status_is_pending() -> None:
    obj = copy.deepcopy(ISVC)
    del obj["status"]
    assert inference_service_status(obj).code == "Pending"


def test_portal_deadline_turns_a_stuck_rollout_into_a_failure() -> None:
    stuck = deployment_status(deployment(availableReplicas=1))
    assert with_deadline(stuck, elapsed=59, deadline=60).phase == PROGRESSING
    late = with_deadline(stuck, elapsed=61, deadline=60)
    assert (late.phase, late.code) == (FAILED, "PortalDeadlineExceeded")
    assert (
        with_deadline(deployment_status(deployment()), elapsed=99, deadline=60).phase == SUCCEEDED
    )
