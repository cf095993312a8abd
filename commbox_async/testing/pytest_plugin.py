"""pytest fixtures for code that uses commbox-async, registered through the ``pytest11`` entry
point: installing the package (with the ``fake`` extra) is all it takes.

- ``commbox_fake``: a fresh :class:`~commbox_async.testing.FakeCommBox` per test.
- ``commbox_client``: an :class:`~commbox_async.AsyncCommBox` wired to it in-process.

::

    async def test_welcome(commbox_client, commbox_fake):
        async with commbox_client as cb:
            object_id = await cb.objects.create(532, NewObject.sms(...))
        assert commbox_fake.objects[object_id].record["message"] == ...

An application that builds its client itself (a FastAPI lifespan, an aiohttp cleanup
context) takes a factory instead, and the test passes ``lambda: commbox_client``: see the
FastAPI example in the documentation.

This module imports nothing optional, so it never breaks a pytest run: without the extra,
the fixtures raise :class:`~commbox_async.MissingExtraError` naming
``pip install 'commbox-async[fake]'``.
"""

from __future__ import annotations

import pytest

from .._client import AsyncCommBox
from ._app import FakeCommBox


@pytest.fixture
def commbox_fake() -> FakeCommBox:
    """A fresh, empty :class:`~commbox_async.testing.FakeCommBox` for this test: no faults, no
    server-side rate limit, any non-empty token accepted, streams created on first use.

    Inspect what your code did through it (``commbox_fake.objects``,
    ``commbox_fake.requests``, ``commbox_fake.outbox``), script failures
    (``commbox_fake.fail_next("lost_after")``) or change it (``commbox_fake.configure(
    rate_limit=5)``). Override the fixture in your ``conftest.py`` for another set-up.
    """
    return FakeCommBox()


@pytest.fixture
def commbox_client(commbox_fake: FakeCommBox) -> AsyncCommBox:
    """An :class:`~commbox_async.AsyncCommBox` talking to ``commbox_fake`` in-process (no
    sockets), with no client-side rate limit and millisecond backoff so retries do not slow
    the test. It is not open yet: use it as ``async with commbox_client as cb:`` inside your
    async test, or hand it to the code under test, which opens it (as an app's lifespan
    does). Like every client it belongs to the event loop that first uses it.
    """
    return commbox_fake.client(initial_backoff=0.001, max_backoff=0.01)
