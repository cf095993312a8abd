"""pytest fixtures, registered through the ``pytest11`` entry point.

- ``commbox_fake``: a fresh :class:`FakeCommBox` per test.
- ``commbox_client``: an :class:`~commbox_async.AsyncCommBox` wired to it in-process; open it
  with ``async with commbox_client as cb:`` inside your async test.
"""

from __future__ import annotations

import pytest

from .._client import AsyncCommBox
from ._app import FakeCommBox


@pytest.fixture
def commbox_fake() -> FakeCommBox:
    return FakeCommBox()


@pytest.fixture
def commbox_client(commbox_fake: FakeCommBox) -> AsyncCommBox:
    return commbox_fake.client(initial_backoff=0.001, max_backoff=0.01)
