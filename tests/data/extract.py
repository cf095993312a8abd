"""Rebuild this folder's data files from CommBox's documentation (``../shared`` beside a clone).

The test suite reads only the files here, so it runs from a plain clone. They hold exactly what
the tests use from the docs, and nothing else:

- ``commbox-openapi.json``: CommBox's OpenAPI spec, as published (``reference/``); the contract
  tests validate every request against it and decode its response examples.
- ``create_object_examples.json``: the JSON examples of the Create Object page, in page order.
- ``webhook_json_blocks.json``: the JSON webhook page's blocks that parse as printed and hold a
  ``payload``.
- ``webhook_json_examples.json``: every payload example of that page. The page's tool damaged
  four of them (a missing closing brace twice, curly quotes, a payload printed without its
  outer braces); those repairs are made here, on the documentation, never in the parser.
- ``webhook_xml_examples.json``: the ``<Event ...>`` examples of the developer guide.

Run ``python tests/data/extract.py`` after the docs change, or with ``--check`` to see whether
the files still match them (not part of the test suite, which must not need ``../shared``).
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[2] / "shared"
SEEDS = SHARED / "seeds"
SPEC = SHARED / "reference" / "commbox-openapi.json"

DEVELOPER_GUIDE = "000_eeff9a958279569b.txt"
WEBHOOKS_JSON = "001_4394081eb04e501e.txt"
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


def webhook_json_examples() -> list[dict[str, Any]]:
    text = seed_text(WEBHOOKS_JSON).replace("\u201c", '"').replace("\u201d", '"')
    starts = [m.start() for m in re.finditer(r'"payload"\s*:', text)]
    out = []
    for i, start in enumerate(starts):
        chunk = text[start : starts[i + 1] if i + 1 < len(starts) else len(text)]
        chunk = chunk[: chunk.rfind("}") + 1]
        for closing in ("", "}", "}}"):
            try:
                out.append(json.loads("{" + chunk + closing))
                break
            except ValueError:
                continue
        else:
            raise ValueError(f"could not read the example at {start}")
    return out


def build() -> dict[str, Any]:
    return {
        "create_object_examples.json": json_blocks(seed_text(CREATE_OBJECT)),
        "webhook_json_blocks.json": [
            b for b in json_blocks(seed_text(WEBHOOKS_JSON)) if "payload" in b
        ],
        "webhook_json_examples.json": webhook_json_examples(),
        "webhook_xml_examples.json": re.findall(
            r"<Event .*?</Event>", seed_text(DEVELOPER_GUIDE), re.S
        ),
    }


def main(check: bool) -> int:
    stale = []
    for name, value in build().items():
        text = json.dumps(value, ensure_ascii=False, indent=1) + "\n"
        path = HERE / name
        if check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
    spec = HERE / "commbox-openapi.json"
    if check:
        if spec.read_bytes() != SPEC.read_bytes():
            stale.append(spec.name)
    else:
        shutil.copyfile(SPEC, spec)
    for name in stale:
        print(f"{name} differs from the docs: run python tests/data/extract.py")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main("--check" in sys.argv))
