"""Testing without CommBox: a stateful fake (in-process or as a real server) and pytest fixtures.

    fake = FakeCommBox()
    async with fake.client() as cb:
        object_id = await cb.objects.create(532, NewObject.sms(...))
    assert fake.objects[object_id].record["message"] == ...

Needs the ``fake`` extra: ``pip install 'commbox-async[fake]'``.
"""

from ._fake import BASE_URL, FAULT_KINDS, FakeCommBox, RequestRecord
from ._server import serve

__all__ = ["BASE_URL", "FAULT_KINDS", "FakeCommBox", "RequestRecord", "serve"]
