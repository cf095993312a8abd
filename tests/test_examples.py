"""Every program under examples/, and the README's main example, run against the fake CommBox.

The programs run as a user runs them (``python examples/x.py``, the token and host from
``COMMBOX_TOKEN`` / ``COMMBOX_BASE_URL``) against the fake served on a loopback socket; the web
apps run in-process with the fake's client injected, as their docstrings show. The FastAPI
app's own tests (``examples/test_fastapi_app.py``) use the pytest fixtures and run with the
suite. The docs include these files, so what they show is what runs here.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from commbox_async import AsyncCommBox, NewObject, ObjectStatusType
from commbox_async.testing import FakeCommBox

from .conftest import serve_in_thread

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

#: Each example and the test that runs it (a new example without a test fails the suite).
COVERED = {
    "quickstart.py": "test_quickstart",
    "bulk_from_csv.py": "test_bulk_from_csv_sends_once_and_resumes",
    "export_jsonl.py": "test_export_jsonl",
    "fastapi_app.py": "examples/test_fastapi_app.py",
    "test_fastapi_app.py": "collected by pytest (testpaths)",
    "aiohttp_app.py": "test_aiohttp_app",
    "redis_workers.py": "test_two_workers_share_one_redis_limit",
}


def test_every_example_is_run_by_the_suite() -> None:
    assert {p.name for p in EXAMPLES.glob("*.py")} == set(COVERED)


@pytest.fixture
def fake() -> FakeCommBox:
    return FakeCommBox()


@pytest.fixture
def served(fake: FakeCommBox) -> Iterator[str]:
    with serve_in_thread(fake) as url:
        yield url


def run_example(
    name: str, url: str, *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {
        **os.environ,
        "COMMBOX_TOKEN": "example-token",
        "COMMBOX_BASE_URL": url,
        "PYTHONPATH": str(ROOT),
        **(env or {}),
    }
    environ.pop("COMMBOX_RATE_LIMIT", None)
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=environ,
        timeout=120,
    )


# -- the README ----------------------------------------------------------------------------------


def readme_block(heading: str) -> str:
    """The first ```python block after ``heading`` in the README."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index(heading) :]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match is not None
    return match.group(1)


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_readmes_main_example_runs_as_written(
    anyio_backend: str,
    fake: FakeCommBox,
    served: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = readme_block("## Using it")
    monkeypatch.setenv("COMMBOX_BASE_URL", served)  # as its comment says: the host from here
    monkeypatch.delenv("COMMBOX_RATE_LIMIT", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "invoice.pdf").write_bytes(b"%PDF-1.4 an invoice")
    code = compile(source, "README.md", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    result = eval(code, {"__name__": "__readme__"})
    if result is not None:
        await result
    (conversation,) = fake.all_objects()
    obj = fake.objects[conversation["objectId"]]
    assert obj.record["statusId"] == int(ObjectStatusType.RESOLVED)
    assert [c["message"] for c in obj.children][-1] == "Any questions?"
    printed = capsys.readouterr().out
    assert "Any questions?" in printed
    uploads = [r for r in fake.requests if r.method == "POST" and r.path.endswith("/objects")]
    assert [f["filename"] for f in uploads[0].body.files] == ["invoice.pdf"]


# -- the programs --------------------------------------------------------------------------------


def test_quickstart(fake: FakeCommBox, served: str, tmp_path: Path) -> None:
    result = run_example("quickstart.py", served, "532", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (conversation,) = fake.all_objects()
    assert f"conversation {conversation['objectId']} resolved" in result.stdout
    assert "Reply STOP to opt out." in result.stdout


def test_bulk_from_csv_sends_once_and_resumes(
    fake: FakeCommBox, served: str, tmp_path: Path
) -> None:
    csv = EXAMPLES / "customers.csv"
    first = run_example("bulk_from_csv.py", served, str(csv), "--stream", "532", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "{'sent': 5} (0 settled by an earlier run)" in first.stdout
    again = run_example("bulk_from_csv.py", served, str(csv), "--stream", "532", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "{'sent': 5} (5 settled by an earlier run)" in again.stdout
    messages = Counter(o["message"] for o in fake.all_objects())
    assert len(messages) == 5 and set(messages.values()) == {1}
    assert "Hi Dana, your order order-1001 has shipped." in messages


def test_bulk_from_csv_reports_a_bad_row_and_sends_the_rest(
    fake: FakeCommBox, served: str, tmp_path: Path
) -> None:
    rows = tmp_path / "rows.csv"
    rows.write_text(
        "key,phone,name\na,972500000001,Ann\nb,,Bo\nc,972500000003\nd,972500000004,Di\n"
    )
    result = run_example("bulk_from_csv.py", served, str(rows), "--stream", "532", cwd=tmp_path)
    assert result.returncode == 1, result.stderr  # some failed
    assert "{'failed': 2, 'sent': 2}" in result.stdout
    assert "b: failed rows.csv:3:" in result.stderr and "c: failed rows.csv:4:" in result.stderr
    assert sorted(o["userStreamProviderId"] for o in fake.all_objects()) == [
        "972500000001",
        "972500000004",
    ]


def test_export_jsonl(fake: FakeCommBox, served: str, tmp_path: Path) -> None:
    async def seed() -> list[int]:
        async with AsyncCommBox(token="t", base_url=served, rate_limit=None) as cb:
            return [
                await cb.objects.create(
                    532, NewObject.sms(user_stream_provider_id=f"97250000000{i}", message="hi")
                )
                for i in range(3)
            ]

    ids = anyio.run(seed)
    args = ("--stream", "532", "--days", "1", "--out", "week.jsonl")
    result = run_example("export_jsonl.py", served, *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "exported 3, already in the file 0, failed 0" in result.stdout
    assert f"week.jsonl holds 3 conversations: {sorted(ids)}" in result.stdout
    again = run_example("export_jsonl.py", served, *args, cwd=tmp_path)
    assert "exported 0, already in the file 3, failed 0" in again.stdout


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_aiohttp_app(anyio_backend: str, fake: FakeCommBox) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    sys.path.insert(0, str(EXAMPLES))
    try:
        import aiohttp_app
    finally:
        sys.path.remove(str(EXAMPLES))
    client = fake.client()
    app = aiohttp_app.create_app(make_client=lambda: client)
    async with TestClient(TestServer(app)) as http:
        response = await http.post("/customers/972501234567/welcome")
        assert response.status == 200
        object_id = (await response.json())["object_id"]
        for subscription, name, body in fake.webhook_bodies(format="xml"):
            answer = await http.post(
                f"/commbox/{subscription.lower()}/{name.lower()}",
                data=body,
                headers={"content-type": "application/xml"},
            )
            assert answer.status == 200
    assert client.is_closed  # the cleanup context closed it
    assert fake.objects[object_id].record["message"] == "Welcome!"
    remarks = [r for r in fake.requests if r.path == f"/objects/{object_id}/remarks"]
    assert len(remarks) == 1 and remarks[0].status == 200


def test_two_workers_share_one_redis_limit(fake: FakeCommBox, served: str, tmp_path: Path) -> None:
    pytest.importorskip("redis")
    from .test_redis_throttle import RedisServer

    redis = RedisServer()
    try:
        args = ("--workers", "2", "--messages", "60", "--rate", "20", "--burst", "5")
        result = run_example(
            "redis_workers.py", served, *args, cwd=tmp_path, env={"REDIS_URL": redis.url}
        )
    finally:
        redis.stop()
    assert result.returncode == 0, result.stderr
    counts: dict[str, Any] = {}
    for line in result.stdout.splitlines():
        if line.startswith("worker "):
            worker, _, text = line.partition(": ")
            counts[worker] = ast.literal_eval(text)
    assert set(counts) == {"worker 0", "worker 1"}
    assert sum(c["sent"] for c in counts.values()) == 60
    assert all(c["sent"] > 0 for c in counts.values())  # both took a share
    messages = Counter(o["message"] for o in fake.all_objects())
    assert len(messages) == 60 and set(messages.values()) == {1}
    # One limit for both: 60 messages at 20/s after a burst of 5 take at least 55/20 s. Two
    # separate limits would take half that.
    elapsed = float(re.search(r"in ([\d.]+)s", result.stdout).group(1))  # type: ignore[union-attr]
    assert elapsed >= (60 - 5) / 20


def doc_blocks() -> list[tuple[str, str]]:
    found = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        text = page.read_text(encoding="utf-8")
        for i, block in enumerate(re.findall(r"```python\n(.*?)```", text, re.S)):
            if not block.lstrip().startswith("--8<--"):  # included from a tested file
                found.append((f"{page.relative_to(ROOT)}#{i}", block))
    return found


def library_names() -> set[str]:
    import commbox_async
    import commbox_async.bulk
    import commbox_async.models
    import commbox_async.testing
    import commbox_async.webhooks

    modules = [
        commbox_async,
        commbox_async.bulk,
        commbox_async.models,
        commbox_async.testing,
        commbox_async.webhooks,
    ]
    return {name for m in modules for name in getattr(m, "__all__", ())}


def bound_names(tree: ast.AST) -> set[str]:
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            bound.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    return bound


@pytest.mark.parametrize(("where", "block"), doc_blocks(), ids=[w for w, _ in doc_blocks()])
def test_every_python_block_in_the_docs_compiles(where: str, block: str) -> None:
    """Blocks written in a page (not included from examples/) parse, import only what the
    package has, and use no library name or standard module they did not import (a snippet
    may lean on names of its context, such as ``cb``, but not on a missing import)."""
    tree = ast.parse(block, where)  # top-level await parses; it only fails when compiled
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("commbox"):
            module = __import__(node.module, fromlist=["_"])
            for alias in node.names:
                assert hasattr(module, alias.name), f"{where}: {node.module}.{alias.name}"
    loaded = {
        n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
    }
    missing = (loaded - bound_names(tree)) & (library_names() | set(sys.stdlib_module_names))
    assert not missing, f"{where} uses {sorted(missing)} without importing them"


# -- examples/bulk_from_csv.py -----------------------------------------------------------------


def _csv_messages(path: Path) -> list[object]:
    import importlib.util

    example = Path(__file__).parent.parent / "examples" / "bulk_from_csv.py"
    spec = importlib.util.spec_from_file_location("bulk_from_csv_example", example)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return list(module.messages(path, 532))


@pytest.mark.parametrize(
    "text",
    ["phone,name\n972500000001,Ann\n", "key,phone,name\n,972500000001,Ann\n"],
    ids=["no-key-column", "empty-key"],
)
def test_a_csv_row_without_a_key_is_rejected_not_sent_under_its_line_number(
    tmp_path: Path, text: str
) -> None:
    """A row with no key (the column missing, or empty) is sent under the key "line:N". The
    key is what makes a re-run skip a row: once a line is added above it, the same customer is
    "line:N+1" (sent again) and whoever is now at line N is skipped as sent. The docstring
    promises a missing column is Rejected. Expected: Rejected, naming the line."""
    rows = tmp_path / "rows.csv"
    rows.write_text(text)
    (item,) = _csv_messages(rows)
    assert type(item).__name__ == "Rejected", item
