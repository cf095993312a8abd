"""A first conversation: create it, add a message, read it back, resolve it.

    COMMBOX_TOKEN=... python examples/quickstart.py 532

Against the fake instead of CommBox: ``commbox fake-server`` in another shell, then
``COMMBOX_TOKEN=any COMMBOX_BASE_URL=http://127.0.0.1:8000 python examples/quickstart.py 532``.
"""

from __future__ import annotations

import sys

import anyio

from commbox_async import AsyncCommBox, NewChild, NewObject, ObjectStatusType


async def main(stream_id: int) -> None:
    # The token and the host come from COMMBOX_TOKEN and COMMBOX_BASE_URL; the rate limit from
    # COMMBOX_RATE_LIMIT, else 10 requests/s (burst 10).
    async with AsyncCommBox() as cb:
        object_id = await cb.objects.create(
            stream_id,
            NewObject.sms(user_stream_provider_id="972501234567", message="Your order shipped."),
        )
        await cb.objects.create_child(
            stream_id,
            object_id,
            NewChild.from_agent(
                user_identity=36574658,
                user_stream_provider_id="972501234567",
                user_stream_provider_type=5,  # telephone
                message="Reply STOP to opt out.",
            ),
        )
        conversation = await cb.objects.get(stream_id, object_id, include_children=True)
        for message in conversation.messages:  # newest first, as CommBox sends them
            print(message.created_time, message.message)
        await cb.objects.set_status(object_id, ObjectStatusType.RESOLVED)
        print(f"conversation {object_id} resolved")


if __name__ == "__main__":
    anyio.run(main, int(sys.argv[1]) if len(sys.argv) > 1 else 532)
