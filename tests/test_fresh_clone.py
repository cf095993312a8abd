"""The README's commands, exactly as written, in a fresh clone with a fresh virtualenv: the
demo's quick-start line and the documentation build. Slow (a clone, a venv, two installs):
``nox -s quickstart`` runs it (CI does, in ``.ci/run``), and so does ``nox -s soak``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> dict[str, str]:
    """The README's shell lines that matter here, by what they do."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = [
        line.split("  #")[0].strip()
        for block in re.findall(r"```bash\n(.*?)```", text, re.S)
        for line in block.splitlines()
        if line.strip()
    ]
    demo = [line for line in lines if "commbox demo" in line]
    docs = [line for line in lines if "nox -s docs" in line]
    tests = [line for line in lines if "nox -s tests" in line]
    assert len(demo) == len(docs) == len(tests) == 1, lines
    return {"demo": demo[0], "docs": docs[0], "tests": tests[0]}


def test_the_quick_start_is_two_commands_as_the_guide_says() -> None:
    commands = readme_commands()
    assert commands["demo"] == 'pip install ".[cli]" && commbox demo'
    assert commands["tests"] == "pip install nox && nox -s tests"
    assert commands["docs"] == "pip install nox && nox -s docs"


@pytest.mark.slow
def test_a_fresh_clone_runs_the_readme(tmp_path: Path) -> None:
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    repo = tmp_path / "commbox-async"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(repo)], check=True, timeout=120)
    subprocess.run(["git", "-C", str(repo), "checkout", "--quiet", head], check=True)
    assert not (repo / ".venv").exists() and not (repo / "site").exists()
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("COMMBOX_", "PYTEST", "VIRTUAL_ENV", "NOX"))
    }
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    commands = readme_commands()
    for what in ("demo", "docs"):
        result = subprocess.run(
            ["bash", "-c", commands[what]],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=1500,
        )
        assert result.returncode == 0, (
            f"{commands[what]}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
        if what == "demo":
            assert "duplicates found in the fake" in result.stdout
    assert (repo / "site" / "index.html").is_file()
    assert (repo / "site" / "client" / "rate-limits" / "index.html").is_file()
