"""The reference material the tests use, from data files in ``tests/data`` (so the suite runs
from a plain clone): CommBox's OpenAPI spec and the docs' JSON and XML examples.
``tests/data/extract.py`` rebuilds them from the documentation and says where each comes from."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent / "data"
SPEC = DATA / "commbox-openapi.json"


@cache
def _data(name: str) -> Any:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def data(name: str) -> Any:
    """A data file of ``tests/data`` (a fresh copy: tests may change what they get)."""
    return json.loads(json.dumps(_data(name)))


@cache
def spec() -> dict[str, Any]:
    return json.loads(SPEC.read_text(encoding="utf-8"))


def resolve(node: Any) -> Any:
    """Follow a local $ref (``#/components/...``) in the spec."""
    while isinstance(node, dict) and "$ref" in node:
        target: Any = spec()
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def example_of(schema: Any) -> Any:
    """A value built from a schema's ``example``s, the way the spec's docs render a sample."""
    schema = resolve(schema)
    if not isinstance(schema, dict):
        return None
    if "example" in schema:
        return schema["example"]
    for key in ("oneOf", "anyOf", "allOf"):
        if key in schema:
            return example_of(schema[key][0])
    if schema.get("type") == "array" or "items" in schema:
        items = resolve(schema.get("items", {}))
        if isinstance(items, dict) and "oneOf" in items:
            return [example_of(s) for s in items["oneOf"]]
        return [example_of(items)]
    if schema.get("type") == "object" or "properties" in schema:
        return {k: example_of(v) for k, v in schema.get("properties", {}).items()}
    return schema.get("example")


def response_example(path: str, method: str, status: str = "200") -> Any:
    op = spec()["paths"][path][method]
    content = op["responses"][status]["content"]["application/json"]
    if "example" in content:
        return content["example"]
    if "examples" in content:
        return next(iter(content["examples"].values()))["value"]
    return example_of(content["schema"])


def request_examples(path: str, method: str) -> dict[str, Any]:
    body = spec()["paths"][path][method]["requestBody"]["content"]
    content = body.get("application/json") or next(iter(body.values()))
    if "examples" in content:
        return {k: v["value"] for k, v in content["examples"].items()}
    if "example" in content:
        return {"example": content["example"]}
    schema = resolve(content["schema"])
    if "example" in schema:
        return {"example": schema["example"]}
    return {"example": example_of(schema)}
