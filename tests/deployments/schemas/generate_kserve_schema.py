"""Derive a JSON Schema for KServe's v1beta1 InferenceService from the `kserve` PyPI wheel.

The wheel ships no CRD YAML, but its OpenAPI-generated model classes carry KServe's API as data:
each class's `openapi_types` (field -> type), `attribute_map` (field -> JSON name) and the fields
its setters refuse to leave empty. This script reads those (with `ast`, importing nothing) and
writes one JSON Schema in which every KServe object is closed (`additionalProperties: false`), so
a misspelt or misplaced field fails. Kubernetes types (resources, env, …) are `$ref`s into
kubernetes-validate's definitions for the Kubernetes version the tests pin.

Run again after bumping the pinned KServe version:
    pip download kserve==0.21.0 --no-deps -d /tmp/kserve
    python tests/deployments/schemas/generate_kserve_schema.py /tmp/kserve/kserve-0.21.0-*.whl
"""

from __future__ import annotations

import ast
import json
import re
import sys
import zipfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
K8S = "k8s-definitions.json#/$defs/"
META_TYPES = {"V1ObjectMeta": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}
REQUIRED = re.compile(r"Invalid value for `(\w+)`, must not be `None`")


def read_models(wheel: Path) -> tuple[str, dict[str, dict]]:
    models: dict[str, dict] = {}
    with zipfile.ZipFile(wheel) as archive:
        version = next(
            m[1] for n in archive.namelist() if (m := re.match(r"kserve-(.+)\.dist-info/", n))
        )
        for name in archive.namelist():
            if not re.match(r"kserve/models/v1beta1_\w+\.py$", name):
                continue
            source = archive.read(name).decode()
            for node in ast.walk(ast.parse(source)):
                if isinstance(node, ast.ClassDef):
                    models[node.name] = _class(node, source)
    return version, models


def _class(node: ast.ClassDef, source: str) -> dict:
    found: dict = {"types": {}, "names": {}, "required": sorted(set(REQUIRED.findall(source)))}
    for statement in node.body:
        if isinstance(statement, ast.Assign) and isinstance(statement.targets[0], ast.Name):
            target = statement.targets[0].id
            if target in ("openapi_types", "attribute_map"):
                found["types" if target == "openapi_types" else "names"] = ast.literal_eval(
                    statement.value
                )
    return found


def type_schema(kind: str, models: dict[str, dict]) -> dict:
    if kind in ("str", "datetime"):
        return {"type": "string"}
    if kind == "int":
        return {"type": "integer"}
    if kind == "float":
        return {"type": "number"}
    if kind == "bool":
        return {"type": "boolean"}
    if kind in ("object", "ResourceQuantity"):
        return {} if kind == "object" else {"type": ["string", "number"]}
    if match := re.fullmatch(r"list\[(.+)\]", kind):
        return {"type": "array", "items": type_schema(match[1], models)}
    if match := re.fullmatch(r"dict\(str, (.+)\)", kind):
        return {"type": "object", "additionalProperties": type_schema(match[1], models)}
    if kind in models:
        return {"$ref": f"#/definitions/{kind}"}
    if kind in META_TYPES:
        return {"$ref": K8S + META_TYPES[kind]}
    if match := re.fullmatch(r"V1(\w+)", kind):
        return {"$ref": f"{K8S}io.k8s.api.core.v1.{match[1]}"}
    if match := re.fullmatch(r"K8sIoApi(\w+)V1(\w+)", kind):
        return {"$ref": f"{K8S}io.k8s.api.{match[1].lower()}.v1.{match[2]}"}
    return {}


def build(version: str, models: dict[str, dict]) -> dict:
    definitions = {}
    for name, model in sorted(models.items()):
        properties = {
            model["names"][field]: type_schema(kind, models)
            for field, kind in sorted(model["types"].items())
        }
        definition = {"type": "object", "properties": properties, "additionalProperties": False}
        required = [model["names"][f] for f in model["required"] if f in model["names"]]
        if required:
            definition["required"] = required
        definitions[name] = definition
    root: dict[str, Any] = dict(definitions["V1beta1InferenceService"])
    root["properties"] = {
        **root["properties"],
        "apiVersion": {"const": "serving.kserve.io/v1beta1"},
        "kind": {"const": "InferenceService"},
    }
    root["required"] = ["apiVersion", "kind", "metadata", "spec"]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "kserve-inferenceservice-v1beta1.json",
        "title": f"KServe {version} InferenceService (serving.kserve.io/v1beta1)",
        "description": (
            f"Derived from the OpenAPI-generated models of the kserve {version} wheel on PyPI "
            "(Apache-2.0, The KServe Authors) by generate_kserve_schema.py."
        ),
        **root,
        "definitions": definitions,
    }


def main() -> None:
    version, models = read_models(Path(sys.argv[1]))
    out = HERE / "kserve-inferenceservice-v1beta1.json"
    out.write_text(json.dumps(build(version, models), indent=1, sort_keys=True) + "\n")
    print(f"wrote {out} from kserve {version} ({len(models)} v1beta1 models)")


if __name__ == "__main__":
    main()
