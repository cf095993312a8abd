"""Running the fake as a real HTTP server (uvicorn), for clients in other processes."""

from __future__ import annotations

from ._app import FakeCommBox


def serve(
    fake: FakeCommBox, *, host: str = "127.0.0.1", port: int = 8000, log_level: str = "warning"
) -> None:
    """Serve ``fake`` until interrupted. Plain HTTP: bind it to loopback only."""
    try:
        import uvicorn
    except ImportError:
        raise SystemExit(
            "the fake server needs uvicorn: pip install 'commbox-async[fake]'"
        ) from None
    uvicorn.run(fake, host=host, port=port, log_level=log_level, lifespan="off")
