"""Events the simulated controllers record: scaling, image pull failures, back-offs, readiness."""

from __future__ import annotations

import uuid
from typing import Any

from apps.simcluster.resources import BY_KIND
from apps.simcluster.store import Store

EVENT = BY_KIND[("v1", "Event")]


def record_event(
    store: Store, involved: dict[str, Any], *, kind: str, type_: str, reason: str, message: str
) -> None:
    """An Event about an object; a repeat of the same one bumps its count, as kubelet does."""
    with store.lock:
        meta = involved.get("metadata") or {}
        namespace = meta.get("namespace", "default")
        for event in store.items(EVENT, namespace):
            if (
                event["involvedObject"].get("name") == meta.get("name")
                and event["reason"] == reason
                and event["message"] == message
            ):
                event["count"] += 1
                event["lastTimestamp"] = store.now()
                event["metadata"]["resourceVersion"] = store.bump()
                return
        now = store.now()
        name = f"{meta.get('name')}.{next(store.event_numbers):08x}"
        store.objects[store.key(EVENT, namespace, name)] = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "uid": str(uuid.uuid4()),
                "creationTimestamp": now,
                "resourceVersion": store.bump(),
            },
            "involvedObject": {
                "kind": kind,
                "namespace": namespace,
                "name": meta.get("name"),
                "uid": meta.get("uid", ""),
                "apiVersion": involved.get("apiVersion", "v1"),
            },
            "reason": reason,
            "message": message,
            "type": type_,
            "count": 1,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "source": {"component": "simulated-controller"},
            "reportingComponent": "simulated-controller",
        }
