"""A bare ASGI app answering every request with one CommBox envelope (fast, no framework)."""

import json

BODY = json.dumps(
    {
        "status": "200",
        "description": "Operation successful",
        "response_time": "2024-08-06T07:51:52.2581942Z",
        "data": {
            "id": 520760,
            "firstName": "John",
            "lastName": "Smith",
            "teamId": 431,
            "email": "john.s@gmail.com",
            "permissionId": 3,
            "brandId": 1054,
        },
    }
).encode()
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
