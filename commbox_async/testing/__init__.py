"""Testing without CommBox: a stateful fake (in-process or as a real server) and pytest fixtures.

    fake = FakeCommBox()
    async with fake.client() as cb:
        object_id = await cb.objects.create(532, NewObject.sms(...))
    assert fake.objects[object_id].record["message"] == ...

Needs the ``fake`` extra: ``pip install 'commbox-async[fake]'``.
"""

# Layout, each module importing only those above it:
#   _wire      the envelope, the handlers' HTTPError, a Reply as it goes on the wire
#   _state     FakeState (what the fake holds, and the rules on it), the record types
#   _faults    the fault kinds (one table: add a kind there), the injector, the rate limit
#   _outbox    webhook bodies (JSON, XML) and delivering them
#   _handlers  one module per API area, named like commbox_async/resources/, each with ROUTES
#   _routing   the route table built from those
#   _asgi      reading bodies, sending replies, dropping connections, the in-process transport
#   _app       FakeCommBox: the ASGI app (auth, rate limit, faults, /_fake/) over FakeState
#   _server    serving it with uvicorn
from ._app import FakeCommBox
from ._faults import FAULT_KINDS
from ._server import serve
from ._state import RequestRecord
from ._wire import BASE_URL

__all__ = ["BASE_URL", "FAULT_KINDS", "FakeCommBox", "RequestRecord", "serve"]
