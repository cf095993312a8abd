"""Sessions: tests, lint, typecheck, docs, bench, demo, soak. ``nox -s tests`` is the README's test
command; ``nox -s docs`` builds the documentation site strictly (a warning is an error)."""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True

PYTHON = "3.11"


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The whole suite, on asyncio and trio."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHON)
def soak(session: nox.Session) -> None:
    """The slow soak tests (bulk sends under faults, repeated SIGKILLs; COMMBOX_SOAK_N sets N),
    then the property tests and fuzzers with ten times their examples."""
    session.install("-e", ".[test]")
    session.run("pytest", "-m", "slow", *session.posargs)
    session.run(
        "pytest",
        "tests/test_fuzz.py",
        "tests/test_hostile.py",
        "tests/test_webhooks.py",
        "tests/test_client.py",
        env={"COMMBOX_HYPOTHESIS_PROFILE": "soak"},
    )


@nox.session(python=PYTHON)
def mutation(session: nox.Session) -> None:
    """Mutation testing of the safety-critical code: the functions tests/mutation/scope.toml
    names (in the files [tool.mutmut] in pyproject.toml mutates), scored by
    tests/mutation/report.py: at least 90% of non-equivalent mutants killed, and every survivor
    listed in tests/mutation/equivalent.toml with why. Names of mutants given after ``--`` run
    just those. Takes about two hours on two cores."""
    import tomllib

    session.install("-e", ".[test]", "mutmut>=3.8,<4", "mypy")
    scope = tomllib.loads(Path("tests/mutation/scope.toml").read_text(encoding="utf-8"))
    names = session.posargs or [name for group in scope["group"] for name in group["mutants"]]
    # mutmut draws a spinner per mutant; its results are read from mutants/ afterwards.
    session.run("mutmut", "run", *names, silent=True, success_codes=[0, 1])
    session.run("python", "tests/mutation/report.py")


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    session.install("-e", ".[test]", "mypy")
    session.run("mypy", "--strict", "commbox_async")


@nox.session(python=PYTHON)
def quickstart(session: nox.Session) -> None:
    """A fresh clone and a fresh virtualenv running the README's demo and docs lines exactly as
    written (slow, so also part of ``nox -s soak``; CI runs this one)."""
    session.install("-e", ".[test]")
    session.run("pytest", "-m", "slow", "tests/test_fresh_clone.py", *session.posargs)


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """The documentation site, into site/: mkdocs build --strict (a broken link, a missing
    snippet or a docstring mkdocstrings cannot read fails it). ``-- serve`` serves it live."""
    session.install("-e", ".[docs]")
    env = {"NO_MKDOCS_2_WARNING": "1"}
    if session.posargs[:1] == ["serve"]:
        session.run("mkdocs", "serve", "--strict", *session.posargs[1:], env=env)
    else:
        session.run("mkdocs", "build", "--strict", *session.posargs, env=env)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Every benchmark under benchmarks/, each reporting ratios against an in-run baseline."""
    session.install("-e", ".[bench]")
    names = session.posargs or [
        "bench_transport",
        "bench_throttle",
        "bench_decode",
        "bench_webhooks",
        "bench_bulk",
        "bench_hostile",
    ]
    for name in names:
        session.run("python", f"benchmarks/{name}.py")


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    session.install("-e", ".[cli]")
    session.run("commbox", "demo", *session.posargs)
