"""Shared helpers: a static CommBox-like server in another process, and result output."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def static_server() -> Iterator[str]:
    """uvicorn serving ``_static_app:app`` on loopback, in its own process."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "_static_app:app",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
            "--app-dir",
            str(HERE),
        ],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            time.sleep(0.05)
        else:
            raise RuntimeError("benchmark server did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def report(name: str, rows: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps({"rows": rows, "summary": summary}, indent=2))
    if rows:
        keys = list(rows[0])
        widths = [max(len(k), *(len(_fmt(r[k])) for r in rows)) for k in keys]
        print("  ".join(k.ljust(w) for k, w in zip(keys, widths)))
        for r in rows:
            print("  ".join(_fmt(r[k]).ljust(w) for k, w in zip(keys, widths)))
    for k, v in summary.items():
        print(f"{k}: {_fmt(v)}")


def _fmt(v: Any) -> str:
    return f"{v:,.3f}" if isinstance(v, float) else str(v)


def ratio(rates: dict[str, list[float]], ours: str, bare: str) -> dict[str, Any]:
    """The median of the rounds' ratios, with its interquartile range and the round count."""
    each = [a / b for a, b in zip(rates[ours], rates[bare], strict=True)]
    q1, _, q3 = statistics.quantiles(each, n=4, method="inclusive")
    return {"median": statistics.median(each), "q1": q1, "q3": q3, "rounds": len(each)}
