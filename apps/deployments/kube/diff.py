"""What an apply would change: the live object against a dry-run apply of the rendered one.

The dry run gives the object as the server would store it (defaults filled in, other managers'
fields kept), so the diff shows real changes and not noise from defaulting.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, overload

import yaml

if TYPE_CHECKING:
    from apps.deployments.kube.client import KubeClient

CREATE = "create"
UPDATE = "update"
UNCHANGED = "unchanged"
# Bookkeeping the server changes on every write; never a difference a person cares about.
VOLATILE_METADATA = (
    "managedFields",
    "resourceVersion",
    "generation",
    "uid",
    "creationTimestamp",
    "selfLink",
)


@dataclass(frozen=True)
class ObjectDiff:
    """One object's planned change, with a unified diff of its YAML."""

    kind: str
    name: str
    action: str
    text: str


# The portal's own bookkeeping: which request applied the object. It changes on every deploy and
# says nothing about what is served, so it is left out of diffs (a preview has no request yet).
BOOKKEEPING_KEYS = ("modelport.dev/deploy-request",)


@overload
def comparable(obj: dict[str, Any]) -> dict[str, Any]: ...
@overload
def comparable(obj: None) -> None: ...
def comparable(obj: dict[str, Any] | None) -> dict[str, Any] | None:
    """The object without status and server (or portal) bookkeeping."""
    if obj is None:
        return None
    clean = {key: value for key, value in obj.items() if key != "status"}
    metadata = dict(clean.get("metadata") or {})
    for key in VOLATILE_METADATA:
        metadata.pop(key, None)
    for field in ("labels", "annotations"):
        if isinstance(metadata.get(field), dict):
            metadata[field] = {
                k: v for k, v in metadata[field].items() if k not in BOOKKEEPING_KEYS
            }
    clean["metadata"] = metadata
    return clean


def diff_objects(live: dict[str, Any] | None, planned: dict[str, Any]) -> ObjectDiff:
    """Compare the live object (None when missing) with the dry-run result."""
    before, after = comparable(live), comparable(planned)
    meta = planned.get("metadata") or {}
    kind, name = planned.get("kind", "?"), meta.get("name", "?")
    before_text = _yaml(before) if before is not None else ""
    after_text = _yaml(after)
    if before is not None and before_text == after_text:
        return ObjectDiff(kind, name, UNCHANGED, "")
    label = f"{kind}/{name}"
    lines = difflib.unified_diff(
        before_text.splitlines(keepends=True),
        after_text.splitlines(keepends=True),
        fromfile=f"live {label}" if before is not None else "/dev/null",
        tofile=f"planned {label}",
    )
    return ObjectDiff(kind, name, CREATE if before is None else UPDATE, "".join(lines))


def plan(client: KubeClient, objects: list[dict[str, Any]]) -> list[ObjectDiff]:
    """For each rendered object: read it live, dry-run apply it, and diff the two."""
    diffs = []
    for obj in objects:
        meta = obj["metadata"]
        live = client.get_or_none(obj["apiVersion"], obj["kind"], meta["namespace"], meta["name"])
        planned = client.apply(obj, dry_run=True)
        diffs.append(diff_objects(live, planned))
    return diffs


def _yaml(obj: dict[str, Any]) -> str:
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(obj, Dumper=dumper, sort_keys=True, default_flow_style=False, width=100)
