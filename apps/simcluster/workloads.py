"""The simulated Deployment controller: ReplicaSets with revisions, pods, conditions, deadlines."""

from __future__ import annotations

import copy
import hashlib
from typing import Any

from apps.simcluster.common import (
    CRASH_LOOP,
    DEPLOYMENT,
    IMAGE_PULL,
    REPLICA_SET,
    REVISION,
    REVISION_HISTORY,
    Timing,
    condition,
    injected_failure,
    owner_ref,
    scale,
    set_condition,
    template_hash,
)
from apps.simcluster.events import record_event
from apps.simcluster.store import Store


class DeploymentController:
    """Rolls Deployments forward as kube-controller-manager does, one simulated second a step."""

    def __init__(self, store: Store, timing: Timing) -> None:
        self.store = store
        self.timing = timing

    def step(self, now: float) -> None:
        for deployment in list(self.store.items(DEPLOYMENT)):
            self._deployment(deployment, now)

    # --- Deployments ----------------------------------------------------------------------------

    def _pods(self, rs: dict[str, Any]) -> list[dict[str, Any]]:
        key = f"{rs['metadata']['namespace']}/{rs['metadata']['name']}"
        return self.store.private["pods"].setdefault(key, [])

    def _deployment(self, deployment: dict[str, Any], now: float) -> None:
        store, meta, spec = self.store, deployment["metadata"], deployment["spec"]
        status = copy.deepcopy(deployment.get("status") or {})
        stamp = store.now()
        owned = [
            rs
            for rs in store.items(REPLICA_SET, meta["namespace"])
            if any(
                ref.get("uid") == meta["uid"] for ref in rs["metadata"].get("ownerReferences", [])
            )
        ]
        digest = template_hash(spec["template"])
        new_rs = next(
            (rs for rs in owned if rs["metadata"]["labels"].get("pod-template-hash") == digest),
            None,
        )
        revisions = [int(rs["metadata"]["annotations"].get(REVISION, "0")) for rs in owned]
        if status.get("observedGeneration") != meta["generation"] or new_rs is None:
            reason = condition(status, "Progressing").get("reason", "NewReplicaSetAvailable")
            if new_rs is None:
                new_rs = self._new_replica_set(deployment, digest, max(revisions, default=0) + 1)
                reason, message = (
                    "NewReplicaSetCreated",
                    f'Created new replica set "{new_rs["metadata"]["name"]}"',
                )
            elif int(new_rs["metadata"]["annotations"].get(REVISION, "0")) != max(revisions):
                # A rollback to an old template re-adopts its ReplicaSet under a new number.
                annotations = new_rs["metadata"]["annotations"]
                annotations[REVISION_HISTORY] = annotations.get(REVISION, "")
                annotations[REVISION] = str(max(revisions) + 1)
                new_rs = store.write_as_controller(REPLICA_SET, new_rs)
                reason, message = (
                    "FoundNewReplicaSet",
                    f'Found new replica set "{new_rs["metadata"]["name"]}"',
                )
            else:
                message = condition(status, "Progressing").get("message", "")
            live = store.find(DEPLOYMENT, meta["namespace"], meta["name"])
            assert live is not None, "the deployment being stepped is in the store"
            live["metadata"].setdefault("annotations", {})[REVISION] = new_rs["metadata"][
                "annotations"
            ][REVISION]
            live["metadata"]["resourceVersion"] = store.bump()
            status["observedGeneration"] = meta["generation"]
            if reason != "NewReplicaSetAvailable":
                set_condition(status, "Progressing", "True", reason, message, stamp)
                condition(status, "Progressing")["lastUpdateTime"] = stamp
                store.private.setdefault("progress", {})[meta["uid"]] = now
            store.write_status(DEPLOYMENT, deployment, status)
            return
        if spec.get("paused"):
            return
        desired = spec.get("replicas", 1)
        strategy = spec.get("strategy") or {}
        rolling = strategy.get("rollingUpdate") or {}
        surge = scale(rolling.get("maxSurge", "25%"), desired, up=True)
        unavailable = scale(rolling.get("maxUnavailable", "25%"), desired, up=False)
        if surge == 0 and unavailable == 0:
            unavailable = 1
        new_pods = self._pods(new_rs)
        old_sets = sorted(
            (rs for rs in owned if rs is not new_rs),
            key=lambda rs: int(rs["metadata"]["annotations"].get(REVISION, "0")),
        )
        failure = injected_failure(spec["template"])
        progressed = False
        for rs in [new_rs, *old_sets]:
            for pod in self._pods(rs):
                progressed |= self._pod_step(pod, rs, now, failure if rs is new_rs else None)

        def ready(pod: dict[str, Any]) -> bool:
            return pod.get("ready_at") is not None and pod["ready_at"] <= now

        def total() -> int:
            return len(new_pods) + sum(len(self._pods(rs)) for rs in old_sets)

        recreate = strategy.get("type") == "Recreate"
        if recreate and any(self._pods(rs) for rs in old_sets):
            for rs in old_sets:
                progressed |= self._resize(deployment, rs, 0, ready)
        elif len(new_pods) != desired:
            room = desired - len(new_pods) if recreate else desired + surge - total()
            target = min(desired, len(new_pods) + max(room, 0))
            if len(new_pods) > desired:
                target = desired
            progressed |= self._resize(deployment, new_rs, target, ready, failure)
        if not recreate:
            available = sum(ready(p) for rs in [new_rs, *old_sets] for p in self._pods(rs))
            new_unavailable = len(new_pods) - sum(ready(p) for p in new_pods)
            budget = total() - (desired - unavailable) - new_unavailable
            for rs in old_sets:
                pods = self._pods(rs)
                unhealthy = [p for p in pods if not ready(p)]
                keep = len(pods) - len(unhealthy) - max(min(budget, len(pods) - len(unhealthy)), 0)
                if keep != len(pods):
                    budget -= len(pods) - len(unhealthy) - keep
                    progressed |= self._resize(deployment, rs, keep, ready)
        pods_all = [p for rs in [new_rs, *old_sets] for p in self._pods(rs)]
        available = sum(ready(p) for p in pods_all)
        updated = len(new_pods)
        counts = {
            "replicas": len(pods_all),
            "updatedReplicas": updated,
            "readyReplicas": available,
            "availableReplicas": available,
            "unavailableReplicas": max(desired - available, 0),
        }
        for key, value in counts.items():
            if value:
                status[key] = value
            else:
                status.pop(key, None)
        if available >= desired - unavailable:
            set_condition(
                status,
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
                stamp,
            )
        else:
            set_condition(
                status,
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
                stamp,
            )
        rs_name = new_rs["metadata"]["name"]
        current = condition(status, "Progressing")
        complete = (
            updated == desired
            and len(pods_all) == desired
            and sum(ready(p) for p in new_pods) == desired
        )
        progress = store.private.setdefault("progress", {})
        if complete:
            set_condition(
                status,
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                f'ReplicaSet "{rs_name}" has successfully progressed.',
                stamp,
            )
        elif progressed:
            set_condition(
                status,
                "Progressing",
                "True",
                "ReplicaSetUpdated",
                f'ReplicaSet "{rs_name}" is progressing.',
                stamp,
            )
            condition(status, "Progressing")["lastUpdateTime"] = stamp
            progress[meta["uid"]] = now
        elif current.get("reason") != "ProgressDeadlineExceeded" and now - progress.get(
            meta["uid"], now
        ) > spec.get("progressDeadlineSeconds", 600):
            set_condition(
                status,
                "Progressing",
                "False",
                "ProgressDeadlineExceeded",
                f'ReplicaSet "{rs_name}" has timed out progressing.',
                stamp,
            )
        condition(status, "Progressing").setdefault("lastUpdateTime", stamp)
        condition(status, "Available").setdefault("lastUpdateTime", stamp)
        for rs in [new_rs, *old_sets]:
            pods = self._pods(rs)
            ready_count = sum(ready(p) for p in pods)
            rs_status = {"replicas": len(pods), "observedGeneration": rs["metadata"]["generation"]}
            if ready_count:
                rs_status.update(readyReplicas=ready_count, availableReplicas=ready_count)
            if len(pods):
                rs_status["fullyLabeledReplicas"] = len(pods)
            store.write_status(REPLICA_SET, rs, rs_status)
        self._prune_history(deployment, old_sets)
        store.write_status(DEPLOYMENT, deployment, status)

    def _new_replica_set(
        self, deployment: dict[str, Any], digest: str, revision: int
    ) -> dict[str, Any]:
        meta, spec = deployment["metadata"], deployment["spec"]
        template = copy.deepcopy(spec["template"])
        template.setdefault("metadata", {}).setdefault("labels", {})["pod-template-hash"] = digest
        selector = copy.deepcopy(spec["selector"])
        selector.setdefault("matchLabels", {})["pod-template-hash"] = digest
        return self.store.write_as_controller(
            REPLICA_SET,
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "metadata": {
                    "name": f"{meta['name']}-{digest}",
                    "namespace": meta["namespace"],
                    "labels": template["metadata"]["labels"],
                    "annotations": {REVISION: str(revision)},
                    "ownerReferences": [owner_ref(deployment)],
                },
                "spec": {"replicas": 0, "selector": selector, "template": template},
            },
        )

    def _resize(
        self,
        deployment: dict[str, Any],
        rs: dict[str, Any],
        target: int,
        ready: Any,
        failure: str | None = None,
    ) -> bool:
        pods = self._pods(rs)
        before = len(pods)
        if target == before:
            return False
        if target < before:
            # Unready pods go first, as the ReplicaSet controller ranks them.
            pods.sort(key=lambda pod: (ready(pod), pod["started"]), reverse=True)
            del pods[target:]
        else:
            now = self.store.clock().timestamp()
            for _ in range(target - before):
                pods.append(self._new_pod(rs, now, failure))
        rs = self.store.find(REPLICA_SET, rs["metadata"]["namespace"], rs["metadata"]["name"]) or rs
        rs["spec"]["replicas"] = target
        rs["metadata"]["resourceVersion"] = self.store.bump()
        verb = "up" if target > before else "down"
        record_event(
            self.store,
            deployment,
            kind="Deployment",
            type_="Normal",
            reason="ScalingReplicaSet",
            message=f"Scaled {verb} replica set {rs['metadata']['name']} from {before} to {target}",
        )
        return True

    def _new_pod(self, rs: dict[str, Any], now: float, failure: str | None) -> dict[str, Any]:
        suffix = hashlib.sha256(
            f"{rs['metadata']['uid']}{now}{len(self._pods(rs))}".encode()
        ).hexdigest()[:5]
        return {
            "name": f"{rs['metadata']['name']}-{suffix}",
            "started": now,
            "ready_at": None if failure else now + self.timing.pod_startup,
            "failure": failure,
            "restarts": 0,
            "next_event": now + min(2.0, self.timing.pod_startup),
            "backoff": 10.0,
        }

    def _pod_step(
        self, pod: dict[str, Any], rs: dict[str, Any], now: float, failure: str | None
    ) -> bool:
        """Emit a failing pod's kubelet events; True when a healthy pod just became ready."""
        if pod.get("failure") is None:
            if (
                pod.get("ready_at") is not None
                and pod["ready_at"] <= now
                and not pod.get("counted")
            ):
                pod["counted"] = True
                return True
            return False
        if now < pod["next_event"]:
            return False
        image = rs["spec"]["template"]["spec"]["containers"][0].get("image", "")
        container = rs["spec"]["template"]["spec"]["containers"][0].get("name", "")
        involved = {
            "apiVersion": "v1",
            "metadata": {"name": pod["name"], "namespace": rs["metadata"]["namespace"]},
        }
        if pod["failure"] == IMAGE_PULL:
            record_event(
                self.store, involved, kind="Pod", type_="Warning", reason="Failed",
                message=f'Failed to pull image "{image}": rpc error: code = NotFound desc = '
                f'failed to pull '
                f'and unpack image "{image}": not found',
            )  # fmt: skip
            record_event(
                self.store, involved, kind="Pod", type_="Warning", reason="BackOff",
                message=f'Back-off pulling image "{image}"',
            )  # fmt: skip
            pod["waiting"] = "ImagePullBackOff"
        elif pod["failure"] == CRASH_LOOP:
            pod["restarts"] += 1
            record_event(
                self.store, involved, kind="Pod", type_="Warning", reason="BackOff",
                message=f"Back-off restarting failed container {container} in pod {pod['name']}",
            )  # fmt: skip
            pod["waiting"] = "CrashLoopBackOff"
        else:
            record_event(
                self.store, involved, kind="Pod", type_="Warning", reason="Unhealthy",
                message="Readiness probe failed: HTTP probe failed with statuscode: 503",
            )  # fmt: skip
        pod["next_event"] = now + pod["backoff"]
        pod["backoff"] = min(pod["backoff"] * 2, 300.0)
        return False

    def _prune_history(self, deployment: dict[str, Any], old_sets: list[dict[str, Any]]) -> None:
        limit = deployment["spec"].get("revisionHistoryLimit", 10)
        idle = [rs for rs in old_sets if not self._pods(rs)]
        for rs in idle[: max(len(idle) - limit, 0)]:
            self.store.delete(REPLICA_SET, rs["metadata"]["namespace"], rs["metadata"]["name"])
            self.store.private["pods"].pop(
                f"{rs['metadata']['namespace']}/{rs['metadata']['name']}", None
            )
