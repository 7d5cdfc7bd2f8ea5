"""Label and field selectors for the simulated API server's list requests."""

from __future__ import annotations

import re
from typing import Any

from apps.simcluster.resources import SimApiError

_SELECTOR = re.compile(r"^\s*([^!=\s]+)\s*(==|=|!=)\s*(\S*)\s*$")
_SET_SELECTOR = re.compile(r"^\s*(\S+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


def _split_selector(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return [*parts, current] if current.strip() else parts


def labels_match(obj: dict[str, Any], selector: str) -> bool:
    """Whether an object's labels satisfy a selector: `a=b`, `a!=b`, `a in (x,y)`, `a`, `!a`."""
    labels = obj["metadata"].get("labels") or {}
    for term in _split_selector(selector):
        if match := _SET_SELECTOR.match(term):
            key, op, values = match[1], match[2], {v.strip() for v in match[3].split(",")}
            if (labels.get(key) in values) != (op == "in"):
                return False
        elif match := _SELECTOR.match(term):
            key, op, value = match.groups()
            if (labels.get(key) == value) == (op == "!="):
                return False
        elif term.strip().startswith("!"):
            if term.strip()[1:] in labels:
                return False
        elif term.strip() not in labels:
            return False
    return True


def fields_match(obj: dict[str, Any], selector: str) -> bool:
    """Whether an object satisfies a field selector such as `involvedObject.name=x`."""
    for term in _split_selector(selector):
        match = _SELECTOR.match(term)
        if not match:
            raise SimApiError(400, "BadRequest", f"invalid field selector: {term!r}")
        path, op, value = match.groups()
        node: Any = obj
        for part in path.split("."):
            node = node.get(part, "") if isinstance(node, dict) else ""
        if (str(node) == value) == (op == "!="):
            return False
    return True
