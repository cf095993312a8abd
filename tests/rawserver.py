"""A tiny HTTP/1.1 server on loopback whose misbehaviour each test scripts.

It runs inside the test's own task group (anyio, so asyncio and trio both work) and records
every request it fully read, which is how tests prove whether a request reached the server.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
from anyio.streams.buffered import BufferedByteReceiveStream

# A behaviour gets (method, path, body) and returns one of:
#   ("respond", status, body_bytes, headers)  |  ("close",)  |  ("reset",)  |  ("hang",)
#   ("late", seconds, action)  (the action, after a pause)  |  ("raw", bytes, then)
#   (those bytes as they are, then "close", "reset", "hang" or "keep": the next request)
#   |  ("drip", head, rest, seconds)
#   ("pieces", [bytes, ...], seconds)  (each piece after a pause, then "close")
Behaviour = Callable[[str, str, bytes], tuple[Any, ...]]


class RawServer:
    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.received: list[tuple[str, str, bytes]] = []
        self.headers: list[dict[str, str]] = []  # each received request's, lower-cased names
        #: Each received request's header lines as sent: (lower-cased name, value), repeats kept.
        self.header_lines: list[list[tuple[str, str]]] = []
        #: How many connections were accepted.
        self.connections = 0
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, stream: anyio.abc.SocketStream) -> None:
        self.connections += 1
        async with stream:
            buffered = BufferedByteReceiveStream(stream)
            try:
                while True:
                    head = await buffered.receive_until(b"\r\n\r\n", 65536)
                    lines = head.decode("latin-1").split("\r\n")
                    method, path, _ = lines[0].split(" ", 2)
                    pairs = [
                        (k.strip().lower(), v.strip())
                        for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)
                    ]
                    headers = dict(pairs)
                    self.header_lines.append(pairs)
                    length = int(headers.get("content-length", "0"))
                    body = await buffered.receive_exactly(length) if length else b""
                    self.received.append((method, path, body))
                    self.headers.append(headers)
                    action = self.behaviour(method, path, body)
                    while action[0] == "late":
                        await anyio.sleep(action[1])
                        action = action[2]
                    if action[0] == "raw":
                        await stream.send(action[1])
                        action = (action[2],)
                    if action[0] == "drip":  # ("drip", at once, then byte by byte, seconds)
                        await stream.send(action[1])
                        for i in range(len(action[2])):
                            await anyio.sleep(action[3])
                            await stream.send(action[2][i : i + 1])
                        return
                    if action[0] == "pieces":
                        for piece in action[1]:
                            await anyio.sleep(action[2])
                            await stream.send(piece)
                        return
                    if action[0] == "close":
                        return
                    if action[0] == "reset":
                        # SO_LINGER 0: closing sends a TCP RST instead of a FIN.
                        import socket
                        import struct

                        raw = stream.extra(anyio.abc.SocketAttribute.raw_socket)
                        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                        return
                    if action[0] == "hang":
                        await anyio.sleep_forever()
                    if action[0] == "keep":  # the connection stays for the next request
                        continue
                    _, status, payload, extra = action
                    hdrs = {"content-type": "application/json", "content-length": str(len(payload))}
                    hdrs.update(extra)
                    out = f"HTTP/1.1 {status} X\r\n" + "".join(
                        f"{k}: {v}\r\n" for k, v in hdrs.items()
                    )
                    await stream.send(out.encode("latin-1") + b"\r\n" + payload)
            except (
                anyio.EndOfStream,
                anyio.IncompleteRead,
                anyio.BrokenResourceError,
                anyio.ClosedResourceError,
                ConnectionError,
            ):
                return


def respond(
    status: int = 200, data: Any = None, headers: dict[str, str] | None = None
) -> tuple[Any, ...]:
    payload = json.dumps(
        {"status": str(status), "description": "OK", "response_time": "t", "data": data}
    )
    return ("respond", status, payload.encode(), headers or {})


@asynccontextmanager
async def raw_server(behaviour: Behaviour) -> AsyncIterator[RawServer]:
    server = RawServer(behaviour)
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    server.port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, server._handle)
        try:
            yield server
        finally:
            tg.cancel_scope.cancel()


async def unused_port() -> int:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port: int = listener.extra(anyio.abc.SocketAttribute.local_port)
    await listener.aclose()
    return port
