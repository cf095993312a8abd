"""Score a ``mutmut run`` (``nox -s mutation``) against the list of equivalent mutants.

Reads mutmut's results under ``mutants/`` for the mutants ``tests/mutation/scope.toml`` names,
prints the score (killed / non-equivalent) per group and in all, and lists every mutant that
survived (or that no test reached, or that was not run) and is not in
``tests/mutation/equivalent.toml`` with its diff. Exits 1 below the goal (90%) or when such an
unexplained survivor exists: each one needs a test that kills it, or an entry saying why it is
equivalent. A mutant ``mypy --strict`` rejects counts as killed (CI would reject it); how many
were is shown apart.
"""

from __future__ import annotations

import fnmatch
import json
import subprocess
import sys
from pathlib import Path

import tomllib

GOAL = 0.90
ROOT = Path(__file__).resolve().parents[2]
TYPE_CHECKED = 37
KILLED = {1, 3, 36, 24, -24, 152, 255, TYPE_CHECKED}  # failed tests, pytest errors, timeouts, mypy


def in_scope(name: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def main() -> int:
    here = Path(__file__).parent
    equivalent = tomllib.loads((here / "equivalent.toml").read_text(encoding="utf-8"))
    explained = {entry["mutant"]: entry["why"] for entry in equivalent.get("mutant", [])}
    groups = tomllib.loads((here / "scope.toml").read_text(encoding="utf-8"))["group"]
    patterns = [pattern for group in groups for pattern in group["mutants"]]
    exits: dict[str, int | None] = {}
    for meta in sorted((ROOT / "mutants").rglob("*.meta")):
        for name, code in json.loads(meta.read_text())["exit_code_by_key"].items():
            if in_scope(name, patterns):
                exits[name] = code
    if not exits:
        print("no mutmut results under mutants/: run `nox -s mutation` first")
        return 1
    survivors = sorted(name for name, code in exits.items() if code not in KILLED)
    unexplained = [name for name in survivors if name not in explained]
    for group in groups:
        names = [n for n in exits if in_scope(n, group["mutants"])]
        killed = sum(exits[n] in KILLED for n in names)
        equal = sum(n in explained and exits[n] not in KILLED for n in names)
        considered = len(names) - equal
        print(
            f"{killed:5}/{considered:<5} {killed / considered if considered else 1:6.1%} "
            f"({equal} equivalent)  {group['what']}"
        )
    killed = sum(code in KILLED for code in exits.values())
    typed = sum(code == TYPE_CHECKED for code in exits.values())
    not_run = sum(code is None for code in exits.values())
    considered = len(exits) - (len(survivors) - len(unexplained))
    score = killed / considered if considered else 1.0
    print(f"mutants: {len(exits)}, killed: {killed} ({typed} by mypy --strict), not run: {not_run}")
    print(f"equivalent (listed with why): {len(survivors) - len(unexplained)}")
    print(f"score: {killed}/{considered} non-equivalent = {score:.1%} (goal {GOAL:.0%})")
    for name in unexplained:
        print(f"\nUNEXPLAINED SURVIVOR {name} (exit {exits[name]}):")
        diff = subprocess.run(["mutmut", "show", name], capture_output=True, text=True)
        print(diff.stdout.strip())
    stale = sorted(name for name in explained if name not in exits)
    for name in stale:
        print(f"listed as equivalent but not generated in scope: {name}")
    return 0 if score >= GOAL and not unexplained and not stale else 1


if __name__ == "__main__":
    sys.exit(main())
