"""The simulated API server's discovery documents: /version, /api, /apis and resource lists."""

from __future__ import annotations

from typing import Any

from apps.simcluster.resources import TYPES

VERSION = {
    "major": "1",
    "minor": "33",
    "gitVersion": "v1.33.0-modelport-simulated",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2025-01-01T00:00:00Z",
    "goVersion": "go1.24.0",
    "compiler": "gc",
    "platform": "simulated/loopback",
}


def discovery(path: str) -> dict[str, Any] | None:
    """The discovery document served at a path, or None if the path is not a discovery one."""
    if path == "/version":
        return VERSION
    if path == "/api":
        return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
    groups = {"apps": "v1", "serving.kserve.io": "v1beta1", "authorization.k8s.io": "v1"}
    if path == "/apis":
        return {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [
                {
                    "name": group,
                    "versions": [{"groupVersion": f"{group}/{version}", "version": version}],
                    "preferredVersion": {"groupVersion": f"{group}/{version}", "version": version},
                }
                for group, version in groups.items()
            ],
        }
    lists = {"/api/v1": ("", "v1"), **{f"/apis/{g}/{v}": (g, v) for g, v in groups.items()}}
    if path not in lists:
        return None
    group, version = lists[path]
    resources = [
        {
            "name": rt.plural,
            "singularName": rt.singular,
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": list(rt.verbs),
            "shortNames": list(rt.short_names),
        }
        for rt in TYPES
        if (rt.group, rt.version) == (group, version)
    ]
    resources += [
        {
            "name": f"{rt.plural}/status",
            "singularName": "",
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": ["get", "patch", "update"],
        }
        for rt in TYPES
        if (rt.group, rt.version) == (group, version) and rt.generation
    ]
    if group == "authorization.k8s.io":
        resources = [
            {
                "name": "selfsubjectaccessreviews",
                "singularName": "",
                "namespaced": False,
                "kind": "SelfSubjectAccessReview",
                "verbs": ["create"],
            }
        ]
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }
