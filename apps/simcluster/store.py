"""The simulated API server's store: CRUD, patches, server-side apply and managed fields.

One lock guards everything; one global integer resourceVersion is bumped on every persisted write.
A write that changes nothing keeps the resourceVersion, as on a real server.
"""

from __future__ import annotations

import copy
import itertools
import threading
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from apps.simcluster import fields, validation
from apps.simcluster.bodies import body_object
from apps.simcluster.resources import BY_KIND, TYPES, ResourceType, SimApiError, not_found
from apps.simcluster.selectors import fields_match, labels_match


class Store:
    """Every object, keyed by (resource type, namespace, name), plus controller-private state."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self.rv = 1
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        # Pods and revisions the controllers simulate; not API objects, but saved with the rest.
        self.private: dict[str, Any] = {"pods": {}, "revisions": {}}
        # Numbers the names of the Events that `events.record_event` writes.
        self.event_numbers = itertools.count(1)

    # --- helpers ------------------------------------------------------------------------------

    def now(self) -> str:
        return self.clock().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    @staticmethod
    def key(rt: ResourceType, namespace: str, name: str) -> tuple[str, str, str]:
        return (f"{rt.api_version}/{rt.plural}", namespace if rt.namespaced else "", name)

    def bump(self) -> str:
        """The next resourceVersion, for a write about to be stored."""
        self.rv += 1
        return str(self.rv)

    def _require_namespace(self, rt: ResourceType, namespace: str) -> None:
        if rt.namespaced and (self.key(TYPES[0], "", namespace) not in self.objects):
            raise not_found(TYPES[0], namespace)

    def get(self, rt: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        with self.lock:
            obj = self.objects.get(self.key(rt, namespace, name))
            if obj is None:
                raise not_found(rt, name)
            return copy.deepcopy(obj)

    def find(self, rt: ResourceType, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get(self.key(rt, namespace, name))

    def items(self, rt: ResourceType, namespace: str | None = None) -> list[dict[str, Any]]:
        prefix = f"{rt.api_version}/{rt.plural}"
        return [
            obj
            for (kind, ns, _), obj in sorted(self.objects.items())
            if kind == prefix and (namespace is None or not rt.namespaced or ns == namespace)
        ]

    def list(
        self,
        rt: ResourceType,
        namespace: str | None,
        *,
        label_selector: str = "",
        field_selector: str = "",
    ) -> dict[str, Any]:
        with self.lock:
            if namespace is not None:
                self._require_namespace(rt, namespace)
            matches = [
                copy.deepcopy(obj)
                for obj in self.items(rt, namespace)
                if labels_match(obj, label_selector) and fields_match(obj, field_selector)
            ]
            return {
                "kind": f"{rt.kind}List",
                "apiVersion": rt.api_version,
                "metadata": {"resourceVersion": str(self.rv)},
                "items": matches,
            }

    # --- writes -------------------------------------------------------------------------------

    def create(
        self,
        rt: ResourceType,
        namespace: str,
        body: dict[str, Any],
        *,
        manager: str,
        dry_run: bool = False,
        operation: str = "Update",
    ) -> dict[str, Any]:
        with self.lock:
            obj = body_object(rt, body)
            meta = obj["metadata"]
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = f"{meta['generateName']}{uuid.uuid4().hex[:5]}"
            name = meta.get("name", "")
            if rt.namespaced:
                if meta.get("namespace", namespace) != namespace:
                    raise SimApiError(
                        400,
                        "BadRequest",
                        "the namespace of the provided object does not match the namespace "
                        "sent on the request",
                    )
                meta["namespace"] = namespace
            self._require_namespace(rt, namespace)
            validation.check(rt, obj)
            if self.key(rt, namespace, name) in self.objects:
                raise SimApiError(
                    409,
                    "AlreadyExists",
                    f'{rt.qualified} "{name}" already exists',
                    details={"name": name, "group": rt.group, "kind": rt.plural},
                )
            # Owned fields are what the caller sent; server defaults belong to nobody.
            owned = fields.leaves(obj, keyed=rt.builtin)
            validation.apply_defaults(rt, obj)
            obj.pop("status", None)
            if rt.kind == "Namespace":
                obj["status"] = {"phase": "Active"}
            meta.update(uid=str(uuid.uuid4()), creationTimestamp=self.now())
            if rt.generation:
                meta["generation"] = 1
            meta["managedFields"] = [self._entry(rt, manager, operation, set(owned))]
            if dry_run:
                return copy.deepcopy(obj)
            meta["resourceVersion"] = self.bump()
            self.objects[self.key(rt, namespace, name)] = obj
            return copy.deepcopy(obj)

    def replace(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        body: dict[str, Any],
        *,
        manager: str,
        dry_run: bool = False,
        subresource: str = "",
    ) -> dict[str, Any]:
        """PUT: the body is the whole new object (or, for /status, its new status)."""
        with self.lock:
            live = self.get(rt, namespace, name)
            obj = body_object(rt, body)
            _check_resource_version(rt, live, obj)
            if subresource == "status":
                new = copy.deepcopy(live)
                new["status"] = obj.get("status", {})
                return self._commit(rt, live, new, manager=manager, dry_run=dry_run)
            obj["metadata"]["name"], obj["metadata"]["namespace"] = name, namespace
            obj["status"] = live.get("status", {})
            return self._commit(rt, live, obj, manager=manager, dry_run=dry_run)

    def patch(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        patch: Any,
        *,
        content_type: str,
        manager: str,
        force: bool = False,
        dry_run: bool = False,
        subresource: str = "",
    ) -> dict[str, Any]:
        with self.lock:
            if content_type == "application/apply-patch+yaml":
                return self.apply(
                    rt, namespace, name, patch, manager=manager, force=force, dry_run=dry_run
                )
            if force:
                raise SimApiError(
                    422, "Invalid", "force: Forbidden: may not be specified for non-apply patch"
                )
            if not isinstance(patch, dict):
                raise SimApiError(
                    415, "UnsupportedMediaType", f"the body of a {content_type} must be an object"
                )
            if content_type == "application/merge-patch+json":
                keyed = False
            elif content_type == "application/strategic-merge-patch+json":
                if not rt.builtin:
                    raise SimApiError(
                        415,
                        "UnsupportedMediaType",
                        "strategic merge patch is not supported for custom resources; "
                        "use a merge patch or server-side apply",
                    )
                keyed = True
            else:
                raise SimApiError(
                    415,
                    "UnsupportedMediaType",
                    f"the simulated cluster does not support {content_type} patches",
                )
            live = self.get(rt, namespace, name)
            _check_resource_version(rt, live, patch)
            if subresource == "status":
                new = copy.deepcopy(live)
                new["status"] = fields.merge(
                    live.get("status", {}), patch.get("status", {}), keyed=keyed, field="status"
                )
            else:
                new = fields.merge(live, patch, keyed=keyed)
                new["status"] = live.get("status", {})
            return self._commit(rt, live, new, manager=manager, dry_run=dry_run)

    def apply(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        applied: Any,
        *,
        manager: str,
        force: bool,
        dry_run: bool,
    ) -> dict[str, Any]:
        """Server-side apply: per-field ownership, conflicts, pruning of fields no longer sent."""
        if (
            not isinstance(applied, dict)
            or not applied.get("apiVersion")
            or not applied.get("kind")
        ):
            raise SimApiError(400, "BadRequest", "apply patches need apiVersion and kind")
        if (applied.get("apiVersion"), applied.get("kind")) != (rt.api_version, rt.kind):
            raise SimApiError(
                400,
                "BadRequest",
                f"the body's {applied.get('kind')} ({applied.get('apiVersion')}) does not match "
                f"the URL's {rt.kind} ({rt.api_version})",
            )
        meta = applied.get("metadata") or {}
        if meta.get("managedFields"):
            raise SimApiError(
                400, "BadRequest", "metadata.managedFields must be nil in an apply request"
            )
        if meta.get("name", name) != name:
            raise SimApiError(400, "BadRequest", "the name in the body does not match the URL")
        applied = copy.deepcopy(applied)
        applied.setdefault("metadata", {}).update(name=name)
        if rt.namespaced:
            applied["metadata"]["namespace"] = namespace
        live = self.find(rt, namespace, name)
        if live is None:
            self._require_namespace(rt, namespace)
            return self.create(
                rt, namespace, applied, manager=manager, dry_run=dry_run, operation="Apply"
            )
        live = copy.deepcopy(live)
        _check_resource_version(rt, live, applied)
        wanted = fields.leaves(applied, keyed=rt.builtin)
        owners = fields.owners(live)
        conflicts = []
        for (other, operation), paths in owners.items():
            if other == manager and operation == "Apply":
                continue
            for path in paths & wanted.keys():
                if fields.get(live, path) != wanted[path] and other != manager:
                    conflicts.append((other, path))
        if conflicts and not force:
            causes = [
                {
                    "reason": "FieldManagerConflict",
                    "message": f'conflict with "{other}": {fields.dotted(path)}',
                    "field": fields.dotted(path),
                }
                for other, path in conflicts
            ]
            lines = "\n".join(f"- {cause['message']}" for cause in causes)
            raise SimApiError(
                409,
                "Conflict",
                f"Apply failed with {len(causes)} conflict{'s' if len(causes) > 1 else ''}: "
                f"{lines}",
                details={"name": name, "group": rt.group, "kind": rt.plural, "causes": causes},
            )
        previous = owners.get((manager, "Apply"), set())
        others_paths = set().union(
            *(paths for key, paths in owners.items() if key != (manager, "Apply"))
        )
        new = fields.merge(live, _without_bookkeeping(applied), keyed=rt.builtin)
        for path in sorted(previous - wanted.keys() - others_paths, key=len, reverse=True):
            fields.remove(new, path)
        new_owners = {
            key: (paths - wanted.keys() if force else paths)
            for key, paths in owners.items()
            if key != (manager, "Apply")
        }
        new_owners[(manager, "Apply")] = set(wanted)
        new["status"] = live.get("status", {})
        validation.check(rt, new)
        return self._commit(
            rt, live, new, manager=manager, dry_run=dry_run, owners=new_owners, operation="Apply"
        )

    def delete(self, rt: ResourceType, namespace: str, name: str, *, orphan: bool = False) -> dict:
        with self.lock:
            obj = self.get(rt, namespace, name)
            del self.objects[self.key(rt, namespace, name)]
            self.bump()
            if not orphan:
                self._collect_garbage(obj["metadata"]["uid"])
            if rt.kind == "Namespace":
                for key in [k for k in self.objects if k[1] == name]:
                    del self.objects[key]
            return obj

    def _collect_garbage(self, owner_uid: str) -> None:
        for key, obj in list(self.objects.items()):
            refs = obj["metadata"].get("ownerReferences") or []
            if any(ref.get("uid") == owner_uid for ref in refs) and key in self.objects:
                del self.objects[key]
                self._collect_garbage(obj["metadata"]["uid"])

    # --- the common end of every update ---------------------------------------------------------

    def _commit(
        self,
        rt: ResourceType,
        live: dict[str, Any],
        new: dict[str, Any],
        *,
        manager: str,
        dry_run: bool,
        owners: dict[tuple[str, str], set[fields.Path]] | None = None,
        operation: str = "Update",
    ) -> dict[str, Any]:
        new_meta = new.setdefault("metadata", {})
        if "status" not in live and not new.get("status"):
            new.pop("status", None)
        for key in ("uid", "creationTimestamp", "name", "namespace", "generation"):
            if key in live["metadata"]:
                new_meta[key] = live["metadata"][key]
            else:
                new_meta.pop(key, None)
        validation.check(rt, new)
        validation.apply_defaults(rt, new)
        if owners is None:
            owners = fields.owners(live)
            before = fields.leaves(live, keyed=rt.builtin)
            after = fields.leaves(new, keyed=rt.builtin)
            changed = {p for p, v in after.items() if before.get(p, fields.MISSING) != v}
            gone = before.keys() - after.keys()
            owners = {key: paths - changed - gone for key, paths in owners.items()}
            if changed:
                owners.setdefault((manager, operation), set()).update(changed)
        entries = [
            self._entry(rt, who, op, paths) for (who, op), paths in sorted(owners.items()) if paths
        ]
        old_entries = {(e["manager"], e["operation"]): e for e in live["metadata"]["managedFields"]}
        for entry in entries:
            old = old_entries.get((entry["manager"], entry["operation"]))
            if old is not None and old["fieldsV1"] == entry["fieldsV1"]:
                entry["time"] = old["time"]
        new_meta["managedFields"] = entries
        new_meta["resourceVersion"] = live["metadata"]["resourceVersion"]
        if rt.generation and _spec(new) != _spec(live):
            new_meta["generation"] = live["metadata"].get("generation", 1) + 1
        if new == live:
            return copy.deepcopy(live)  # a no-op write: same resourceVersion, nothing stored
        if dry_run:
            return copy.deepcopy(new)
        new_meta["resourceVersion"] = self.bump()
        self.objects[self.key(rt, new_meta.get("namespace", ""), new_meta["name"])] = new
        return copy.deepcopy(new)

    def _entry(
        self, rt: ResourceType, manager: str, operation: str, paths: Iterable[fields.Path]
    ) -> dict[str, Any]:
        return {
            "manager": manager,
            "operation": operation,
            "apiVersion": rt.api_version,
            "time": self.now(),
            "fieldsType": "FieldsV1",
            "fieldsV1": fields.to_fields_v1(set(paths)),
        }

    # --- used by the controllers ----------------------------------------------------------------

    def write_status(self, rt: ResourceType, obj: dict[str, Any], status: dict[str, Any]) -> bool:
        """Set an object's status as its controller; False (and no new version) if unchanged."""
        with self.lock:
            meta = obj["metadata"]
            current = self.find(rt, meta.get("namespace", ""), meta["name"])
            if current is None or current.get("status") == status:
                return False
            current["status"] = copy.deepcopy(status)
            current["metadata"]["resourceVersion"] = self.bump()
            return True

    def write_as_controller(self, rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        """Create or update an object a controller owns (a ReplicaSet, a predictor Deployment)."""
        with self.lock:
            meta = obj["metadata"]
            namespace = meta.get("namespace", "")
            live = self.find(rt, namespace, meta["name"])
            if live is None:
                return self.create(rt, namespace, obj, manager="simulated-controller")
            new = copy.deepcopy(live)
            new["metadata"].update(
                {k: v for k, v in meta.items() if k in ("labels", "annotations", "ownerReferences")}
            )
            if "spec" in obj:
                new["spec"] = copy.deepcopy(obj["spec"])
            return self._commit(
                rt, copy.deepcopy(live), new, manager="simulated-controller", dry_run=False
            )

    # --- persistence ----------------------------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        with self.lock:
            return {
                "resourceVersion": self.rv,
                "objects": [copy.deepcopy(obj) for _, obj in sorted(self.objects.items())],
                "private": copy.deepcopy(self.private),
            }

    def load(self, state: dict[str, Any]) -> None:
        with self.lock:
            self.rv = int(state.get("resourceVersion", 1))
            self.objects = {}
            for obj in state.get("objects", []):
                rt = BY_KIND[(obj["apiVersion"], obj["kind"])]
                meta = obj["metadata"]
                self.objects[self.key(rt, meta.get("namespace", ""), meta["name"])] = obj
            self.private = state.get("private") or {"pods": {}, "revisions": {}}


def _without_bookkeeping(obj: dict[str, Any]) -> dict[str, Any]:
    clean = copy.deepcopy(obj)
    clean.pop("status", None)
    for key in ("resourceVersion", "uid", "generation", "creationTimestamp"):
        clean.get("metadata", {}).pop(key, None)
    return clean


def _check_resource_version(rt: ResourceType, live: dict[str, Any], body: Any) -> None:
    wanted = (
        ((body or {}).get("metadata") or {}).get("resourceVersion")
        if isinstance(body, dict)
        else None
    )
    if wanted and wanted != live["metadata"]["resourceVersion"]:
        name = live["metadata"]["name"]
        raise SimApiError(
            409,
            "Conflict",
            f'Operation cannot be fulfilled on {rt.qualified} "{name}": the object has been '
            "modified; please apply your changes to the latest version and try again",
            details={"name": name, "group": rt.group, "kind": rt.plural},
        )


def _spec(obj: dict[str, Any]) -> Any:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}
