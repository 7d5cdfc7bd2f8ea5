"""Field paths, merges and field ownership for the simulated API server.

A path is a tuple of steps: a field name, or `("k", key)` for one element of a keyed list (such as
a container named "model-server"). Built-in kinds merge lists like `containers` and `env` by their
key; CRD lists are atomic, as on a real server without list markers. This is a subset of
structured-merge-diff, enough for the portal's objects.
"""

from __future__ import annotations

import copy
import json
from typing import Any

Path = tuple[Any, ...]
# List field name -> the element fields that identify an element (strategic merge keys).
KEYED_LISTS: dict[str, tuple[str, ...]] = {
    "containers": ("name",),
    "initContainers": ("name",),
    "env": ("name",),
    "volumes": ("name",),
    "volumeMounts": ("mountPath",),
    "imagePullSecrets": ("name",),
    "conditions": ("type",),
}
# Not owned by anyone: identity and server bookkeeping.
UNTRACKED_TOP = {"apiVersion", "kind", "status"}
UNTRACKED_METADATA = {
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "deletionTimestamp",
    "selfLink",
}


def list_keys(field: str, items: list[Any], keyed: bool) -> tuple[str, ...] | None:
    """The merge key of a list field, or None when the list is atomic."""
    if not keyed or not items or not all(isinstance(item, dict) for item in items):
        return None
    if field == "ports":
        # Container ports are keyed by containerPort, Service ports by port.
        return ("containerPort",) if "containerPort" in items[0] else ("port",)
    return KEYED_LISTS.get(field)


def element_key(item: dict[str, Any], keys: tuple[str, ...]) -> tuple[tuple[str, Any], ...]:
    return tuple((key, item.get(key)) for key in keys)


def leaves(obj: dict[str, Any], *, keyed: bool) -> dict[Path, Any]:
    """Every owned leaf of an object and its value."""
    found: dict[Path, Any] = {}
    for key, value in obj.items():
        if key in UNTRACKED_TOP:
            continue
        if key == "metadata" and isinstance(value, dict):
            for meta_key, meta_value in value.items():
                if meta_key not in UNTRACKED_METADATA:
                    _walk(("metadata", meta_key), meta_key, meta_value, keyed, found)
            continue
        _walk((key,), key, value, keyed, found)
    return found


def _walk(path: Path, field: str, value: Any, keyed: bool, found: dict[Path, Any]) -> None:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            _walk((*path, key), key, item, keyed, found)
        return
    if isinstance(value, list):
        keys = list_keys(field, value, keyed)
        if keys is not None:
            for item in value:
                step = ("k", element_key(item, keys))
                for key, sub in item.items():
                    _walk((*path, step, key), key, sub, keyed, found)
            return
    found[path] = value


def get(obj: Any, path: Path) -> Any:
    """The value at a path, or a sentinel `MISSING`."""
    node = obj
    for step in path:
        if isinstance(step, tuple):
            node = _find_element(node, step[1])
        elif isinstance(node, dict) and step in node:
            node = node[step]
        else:
            return MISSING
        if node is MISSING:
            return MISSING
    return node


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def _find_element(items: Any, key: tuple[tuple[str, Any], ...]) -> Any:
    if not isinstance(items, list):
        return MISSING
    for item in items:
        if isinstance(item, dict) and all(item.get(k) == v for k, v in key):
            return item
    return MISSING


def merge(live: Any, patch: Any, *, keyed: bool, field: str = "", nulls_delete: bool = True) -> Any:
    """Merge `patch` into `live`: maps recursively, keyed lists by key, anything else replaced.

    With keyed=False this is an RFC 7386 JSON merge patch; with keyed=True, a strategic merge
    patch (without `$patch` directives) and the merge step of server-side apply.
    """
    if isinstance(patch, dict) and isinstance(live, dict):
        result = dict(live)
        for key, value in patch.items():
            if value is None and nulls_delete:
                result.pop(key, None)
            elif key in result:
                result[key] = merge(
                    result[key], value, keyed=keyed, field=key, nulls_delete=nulls_delete
                )
            else:
                result[key] = _strip_nulls(copy.deepcopy(value)) if nulls_delete else value
        return result
    if isinstance(patch, list) and isinstance(live, list):
        keys = list_keys(field, patch or live, keyed)
        if keys is not None:
            merged = []
            patch_keys = [element_key(item, keys) for item in patch]
            for item in patch:
                existing = _find_element(live, element_key(item, keys))
                merged.append(
                    item
                    if existing is MISSING
                    else merge(existing, item, keyed=keyed, nulls_delete=nulls_delete)
                )
            merged += [item for item in live if element_key(item, keys) not in patch_keys]
            return merged
    return copy.deepcopy(patch)


def _strip_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_nulls(v) for k, v in value.items() if v is not None}
    return value


def remove(obj: dict[str, Any], path: Path) -> None:
    """Remove the field at `path` (or a whole keyed-list element) and any maps left empty."""
    parents: list[tuple[Any, Any]] = []
    node: Any = obj
    for step in path[:-1]:
        child = _find_element(node, step[1]) if isinstance(step, tuple) else node.get(step, MISSING)
        if child is MISSING:
            return
        parents.append((node, step))
        node = child
    last = path[-1]
    if isinstance(last, tuple):
        element = _find_element(node, last[1])
        if element is not MISSING:
            node.remove(element)
    elif isinstance(node, dict):
        node.pop(last, None)
    # Drop maps (and list elements) emptied by the removal, innermost first.
    for parent, step in reversed(parents):
        child = _find_element(parent, step[1]) if isinstance(step, tuple) else parent.get(step)
        if isinstance(step, tuple):
            keys = {k for k, _ in step[1]}
            if isinstance(child, dict) and set(child) <= keys:
                parent.remove(child)
        elif child in ({}, []):
            parent.pop(step, None)


def to_fields_v1(paths: set[Path]) -> dict[str, Any]:
    """Paths in the API's managedFields `fieldsV1` form ("f:spec", 'k:{"name":"x"}')."""
    tree: dict[str, Any] = {}
    for path in sorted(paths, key=_sort_key):
        node = tree
        for step in path:
            if isinstance(step, tuple):
                name = "k:" + json.dumps(dict(step[1]), sort_keys=True, separators=(",", ":"))
                node = node.setdefault(name, {})
                node.setdefault(".", {})
            else:
                node = node.setdefault(f"f:{step}", {})
    return tree


def from_fields_v1(tree: dict[str, Any], prefix: Path = ()) -> set[Path]:
    """The inverse of `to_fields_v1`: the leaf paths a fieldsV1 tree names."""
    paths: set[Path] = set()
    for name, sub in tree.items():
        if name == ".":
            continue
        if name.startswith("k:"):
            step: Any = ("k", tuple(json.loads(name[2:]).items()))
        else:
            step = name[2:]
        children = {k: v for k, v in sub.items() if k != "."}
        if children:
            paths |= from_fields_v1(children, (*prefix, step))
        else:
            paths.add((*prefix, step))
    return paths


def owners(obj: dict[str, Any]) -> dict[tuple[str, str], set[Path]]:
    """The paths each (manager, operation) owns, from an object's managedFields."""
    return {
        (entry["manager"], entry["operation"]): from_fields_v1(entry.get("fieldsV1") or {})
        for entry in obj["metadata"].get("managedFields") or []
    }


def dotted(path: Path) -> str:
    """A path as apply conflicts name it: `.spec.template.spec.containers[name="x"].image`."""
    parts = []
    for step in path:
        if isinstance(step, tuple):
            parts.append("[" + ",".join(f"{k}={json.dumps(v)}" for k, v in step[1]) + "]")
        else:
            parts.append(f".{step}")
    return "".join(parts)


def _sort_key(path: Path) -> str:
    return json.dumps([list(s) if isinstance(s, tuple) else s for s in path], default=str)
