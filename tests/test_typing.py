"""The public API's types, as a user's type checker sees them (tests/typing/user_code.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent


def test_user_code_type_checks_under_mypy_strict() -> None:
    pytest.importorskip("mypy")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--warn-unused-ignores",
            "--no-incremental",
            "--python-version",
            "3.11",
            str(HERE / "typing" / "user_code.py"),
        ],
        capture_output=True,
        text=True,
        cwd=HERE.parent,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
