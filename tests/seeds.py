"""Reading the reference material in ../shared: the seeds' JSON examples and the OpenAPI spec."""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

# CI runs a clone with the reference material beside it, as ../shared.
SHARED = Path(
    os.environ.get("COMMBOX_SHARED") or Path(__file__).resolve().parents[1].parent / "shared"
)
SEEDS = SHARED / "seeds"
SPEC = SHARED / "reference" / "commbox-openapi.json"

DEVELOPER_GUIDE = "000_eeff9a958279569b.txt"
WEBHOOKS_JSON = "001_4394081eb04e501e.txt"
OBJECT_APIS = "002_6856793fc852589d.txt"
CREATE_OBJECT = "004_0cdcbbb9b0feafc1.txt"


def seed_text(name: str) -> str:
    return (SEEDS / name).read_text(encoding="utf-8")


def json_blocks(text: str) -> list[Any]:
    """Every JSON object in a page that starts at the beginning of a line (docs examples)."""
    decoder = json.JSONDecoder()
    blocks = []
    i = 0
    while (i := text.find("{", i)) != -1:
        if i == 0 or text[i - 1] in "\n}" or text[:i].rstrip(" \t").endswith("\n"):
            try:
                value, end = decoder.raw_decode(text, i)
            except ValueError:
                i += 1
                continue
            blocks.append(value)
            i = end
        else:
            i += 1
    return blocks


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
