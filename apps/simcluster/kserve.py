"""The simulated KServe controller: Standard mode owns a Deployment, Knative mode revisions."""

from __future__ import annotations

import copy
from typing import Any

from apps.simcluster.common import (
    CRASH_LOOP,
    DEADLINE,
    DEPLOYMENT,
    FAIL_ANNOTATION,
    IMAGE_PULL,
    ISVC,
    MODE,
    RUNTIME_IMAGE,
    SERVICE,
    STORAGE_INITIALIZER,
    Timing,
    condition,
    injected_failure,
    owner_ref,
    seconds,
    set_condition,
    template_hash,
)
from apps.simcluster.events import record_event
from apps.simcluster.store import Store


class KServeController:
    """Sets InferenceService status as KServe's controller would, one simulated second a step."""

    def __init__(self, store: Store, timing: Timing) -> None:
        self.store = store
        self.timing = timing

    def step(self, now: float) -> None:
        for isvc in list(self.store.items(ISVC)):
            self._inference_service(isvc, now)

    def _inference_service(self, isvc: dict[str, Any], now: float) -> None:
        meta, spec = isvc["metadata"], isvc["spec"]
        status = copy.deepcopy(isvc.get("status") or {})
        mode = (meta.get("annotations") or {}).get(MODE, "Standard")
        was_ready = condition(status, "Ready").get("status")
        predictor = spec.get("predictor") or {}
        model = predictor.get("model") or {}
        status["deploymentMode"] = mode
        if (model.get("modelFormat") or {}).get("name") == "mlflow":
            status["servingRuntimeName"] = "kserve-mlserver"
        host = f"{meta['name']}-{meta['namespace']}.example.com"
        if mode == "Knative":
            self._knative(isvc, status, now)
        else:
            self._standard(isvc, status, now)
        ready = condition(status, "Ready").get("status")
        if ready == "True":
            status["url"] = f"http://{host}"
            status["address"] = {
                "url": f"http://{meta['name']}.{meta['namespace']}.svc.cluster.local"
            }
        if ready != was_ready and ready in ("True", "False"):
            record_event(
                self.store,
                isvc,
                kind="InferenceService",
                type_="Normal" if ready == "True" else "Warning",
                reason="InferenceServiceReady" if ready == "True" else "InferenceServiceNotReady",
                message=f"InferenceService [{meta['name']}] is "
                f"{'Ready' if ready == 'True' else 'not Ready'}",
            )
        self.store.write_status(ISVC, isvc, status)

    def _standard(self, isvc: dict[str, Any], status: dict[str, Any], now: float) -> None:
        meta, predictor = isvc["metadata"], isvc["spec"]["predictor"]
        model = predictor.get("model") or {}
        name, namespace = f"{meta['name']}-predictor", meta["namespace"]
        labels = {
            "app": name,
            "serving.kserve.io/inferenceservice": meta["name"],
            "component": "predictor",
        }
        uri = model.get("storageUri", "")
        annotations = {"serving.kserve.io/storage-initializer-sourceuri": uri}
        failure = injected_failure(isvc)
        if failure:
            annotations[FAIL_ANNOTATION] = failure
        container = {
            "name": "kserve-container",
            "image": model.get("image") or RUNTIME_IMAGE,
            "env": [
                {"name": "MLSERVER_MODEL_URI", "value": "/mnt/models"},
                {"name": "MLSERVER_MODEL_NAME", "value": meta["name"]},
            ],
            "ports": [{"containerPort": 8080, "protocol": "TCP"}],
            "resources": model.get("resources") or {},
        }
        self.store.write_as_controller(
            DEPLOYMENT,
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {
                    "name": name,
                    "namespace": namespace,
                    "labels": labels,
                    "ownerReferences": [owner_ref(isvc)],
                },
                "spec": {
                    "replicas": max(predictor.get("minReplicas", 1), 1),
                    "selector": {"matchLabels": {"app": name}},
                    "template": {
                        "metadata": {"labels": labels, "annotations": annotations},
                        "spec": {
                            "initContainers": [
                                {
                                    "name": "storage-initializer",
                                    "image": STORAGE_INITIALIZER,
                                    "args": [uri, "/mnt/models"],
                                }
                            ],
                            "containers": [container],
                        },
                    },
                },
            },
        )
        self.store.write_as_controller(
            SERVICE,
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {
                    "name": name,
                    "namespace": namespace,
                    "labels": labels,
                    "ownerReferences": [owner_ref(isvc)],
                },
                "spec": {
                    "selector": {"app": name},
                    "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
                },
            },
        )
        deployment = self.store.find(DEPLOYMENT, namespace, name) or {}
        dstatus = deployment.get("status") or {}
        stamp = self.store.now()
        # KServe's mapping from the Deployment's conditions; later rules win.
        value, reason, message = "Unknown", "Progressing", "Waiting for the predictor deployment"
        available, progressing, failure_c = (
            condition(dstatus, k) for k in ("Available", "Progressing", "ReplicaFailure")
        )
        if available.get("status") == "True":
            value, reason, message = "True", "", ""
        if progressing.get("status") == "True":
            done = progressing.get("reason") == "NewReplicaSetAvailable"
            value = "True" if done else "Unknown"
            reason, message = (
                ("", "") if done else (progressing["reason"], progressing.get("message", ""))
            )
        for cond in (progressing, available, failure_c):
            bad = cond.get("status") == ("True" if cond is failure_c else "False")
            if bad and (cond is not progressing or cond.get("message")):
                value, reason, message = "False", cond.get("reason", ""), cond.get("message", "")
        set_condition(status, "PredictorReady", value, reason, message, stamp)
        set_condition(status, "IngressReady", "True", "", "", stamp)
        set_condition(status, "Ready", value, reason, message, stamp)
        status["observedGeneration"] = dstatus.get("observedGeneration", 0)
        status.setdefault("components", {})["predictor"] = {
            "url": f"http://{name}.{namespace}.svc.cluster.local"
        }
        restarts = max(
            (
                pod["restarts"]
                for key, pods in self.store.private["pods"].items()
                if key.startswith(f"{namespace}/{name}-")
                for pod in pods
            ),
            default=0,
        )
        self._model_status(
            status, value, failure if restarts >= self.timing.crash_restarts else None
        )

    def _knative(self, isvc: dict[str, Any], status: dict[str, Any], now: float) -> None:
        meta, predictor = isvc["metadata"], isvc["spec"]["predictor"]
        revisions = self.store.private["revisions"].setdefault(meta["uid"], [])
        # Traffic settings are routing, not part of the revision template.
        template = {k: v for k, v in predictor.items() if k != "canaryTrafficPercent"}
        digest = template_hash([template, (meta.get("annotations") or {}).get(FAIL_ANNOTATION)])
        stamp = self.store.now()
        if not revisions or revisions[-1]["hash"] != digest:
            failure = injected_failure(isvc)
            deadline = seconds(
                (meta.get("annotations") or {}).get("serving.knative.dev/progress-deadline", "600s")
            )
            fails_at = {
                IMAGE_PULL: 3 * self.timing.pod_startup,
                CRASH_LOOP: 5 * self.timing.pod_startup,
                DEADLINE: deadline,
            }
            revisions.append(
                {
                    "name": f"{meta['name']}-predictor-{len(revisions) + 1:05d}",
                    "hash": digest,
                    "ready_at": None if failure else now + self.timing.pod_startup,
                    "failed_at": now + fails_at[failure] if failure else None,
                    "failure": failure,
                    "next_event": now + 2,
                }
            )
        latest = revisions[-1]
        ready = [r for r in revisions if r["ready_at"] is not None and r["ready_at"] <= now]
        failed = latest["failed_at"] is not None and latest["failed_at"] <= now
        if latest["failure"] and now >= latest["next_event"] and not failed:
            self._revision_warning(isvc, latest)
            latest["next_event"] = now + 10
        components = status.setdefault("components", {}).setdefault("predictor", {})
        components["latestCreatedRevision"] = latest["name"]
        if ready:
            components["latestReadyRevision"] = ready[-1]["name"]
        rolled = components.get("latestRolledoutRevision")
        if ready and ready[-1] is latest:
            canary = predictor.get("canaryTrafficPercent")
            if canary is None or canary == 100 or rolled in (None, latest["name"]):
                if rolled != latest["name"]:
                    components["previousRolledoutRevision"] = rolled
                    components["latestRolledoutRevision"] = latest["name"]
                components["traffic"] = [
                    {
                        "revisionName": latest["name"],
                        "percent": 100,
                        "latestRevision": True,
                        "tag": "latest",
                    }
                ]
            else:
                components["traffic"] = [
                    {
                        "revisionName": latest["name"],
                        "percent": canary,
                        "latestRevision": True,
                        "tag": "latest",
                    },
                    {
                        "revisionName": rolled,
                        "percent": 100 - canary,
                        "latestRevision": False,
                        "tag": "prev",
                    },
                ]
        components = {k: v for k, v in components.items() if v is not None}
        status["components"]["predictor"] = components
        serving = bool(ready) and not failed
        if failed:
            reason = (
                "ProgressDeadlineExceeded" if latest["failure"] == DEADLINE else "RevisionFailed"
            )
            detail = {
                IMAGE_PULL: "Unable to fetch image: failed to resolve image to digest: not found",
                CRASH_LOOP: "Container failed with: model server exited with code 1 "
                "while loading the model",
                DEADLINE: "Initial scale was never achieved",
            }[latest["failure"]]
            message = f'Revision "{latest["name"]}" failed with message: {detail}.'
            for kind in (
                "LatestDeploymentReady",
                "PredictorConfigurationReady",
                "PredictorReady",
                "Ready",
            ):
                set_condition(status, kind, "False", reason, message, stamp)
        elif ready and ready[-1] is latest:
            for kind in (
                "LatestDeploymentReady",
                "PredictorConfigurationReady",
                "PredictorReady",
                "Ready",
            ):
                set_condition(status, kind, "True", "", "", stamp)
        else:
            message = f'Revision "{latest["name"]}" is not ready yet.'
            for kind in (
                "LatestDeploymentReady",
                "PredictorConfigurationReady",
                "PredictorReady",
                "Ready",
            ):
                set_condition(status, kind, "Unknown", "RevisionMissing", message, stamp)
        route = "True" if (ready or serving) else "Unknown"
        for kind in ("PredictorRouteReady", "RoutesReady", "IngressReady"):
            set_condition(status, kind, route, "", "", stamp)
        self._model_status(
            status,
            condition(status, "PredictorReady")["status"],
            latest["failure"] if failed else None,
        )

    def _revision_warning(self, isvc: dict[str, Any], revision: dict[str, Any]) -> None:
        involved = {
            "apiVersion": "v1",
            "metadata": {
                "name": f"{revision['name']}-deployment",
                "namespace": isvc["metadata"]["namespace"],
            },
        }
        uri = ((isvc["spec"]["predictor"].get("model")) or {}).get("storageUri", "")
        reason, message = {
            IMAGE_PULL: ("BackOff", f'Back-off pulling image "{RUNTIME_IMAGE}"'),
            CRASH_LOOP: (
                "BackOff",
                f"Back-off restarting failed container kserve-container "
                f"(model {uri} failed to load)",
            ),
            DEADLINE: (
                "Unhealthy",
                "Readiness probe failed: HTTP probe failed with statuscode: 503",
            ),
        }[revision["failure"]]
        record_event(
            self.store, involved, kind="Pod", type_="Warning", reason=reason, message=message
        )

    @staticmethod
    def _model_status(status: dict[str, Any], ready: str, failure: str | None) -> None:
        if failure == CRASH_LOOP:
            status["modelStatus"] = {
                "transitionStatus": "BlockedByFailedLoad",
                "states": {"activeModelState": "", "targetModelState": "FailedToLoad"},
                "lastFailureInfo": {
                    "reason": "ModelLoadFailed",
                    "message": "Model server exited with code 1 while loading the model",
                    "exitCode": 1,
                },
            }
        elif ready == "True":
            status["modelStatus"] = {
                "transitionStatus": "UpToDate",
                "states": {"activeModelState": "Loaded", "targetModelState": "Loaded"},
                "copies": {"totalCopies": 1},
            }
        else:
            status["modelStatus"] = {
                "transitionStatus": "InProgress",
                "states": {"activeModelState": "Pending", "targetModelState": "Loading"},
            }
