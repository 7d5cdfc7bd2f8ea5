"""Request bodies for the simulated API server: parsed from JSON or YAML, made into objects."""

from __future__ import annotations

import copy
import json
from typing import Any

import yaml

from apps.simcluster.resources import ResourceType, SimApiError


def parse_body(raw: bytes, content_type: str) -> Any:
    """A request body: JSON, or YAML for apply patches sent as YAML."""
    if not raw:
        return {}
    try:
        if content_type == "application/apply-patch+yaml":
            return yaml.safe_load(raw)
        return json.loads(raw)
    except (ValueError, yaml.YAMLError) as exc:
        raise SimApiError(400, "BadRequest", f"the request body is not valid: {exc}") from None


def body_object(rt: ResourceType, body: Any) -> dict[str, Any]:
    """A copy of a create or update body, typed from the URL if it is not, without managedFields."""
    if not isinstance(body, dict):
        raise SimApiError(400, "BadRequest", "the request body must be an object")
    obj = copy.deepcopy(body)
    obj.setdefault("apiVersion", rt.api_version)
    obj.setdefault("kind", rt.kind)
    obj.setdefault("metadata", {})
    obj["metadata"].pop("managedFields", None)
    return obj
