"""Form links, auth tickets and a conversation's automation context."""

from __future__ import annotations

import secrets
from typing import Any

from .._state import FakeState
from .._wire import BASE_URL, HTTPError
from ._common import Multipart, P, Q, Result, Routes, data, get


def _form_link(referring: Any) -> dict[str, Any]:
    return {
        "conversation_id": str(referring or ""),
        "form_link": f"{BASE_URL}/form/fake/{secrets.token_hex(16)}",
    }


def _create_link(state: FakeState, p: P, q: Q, body: Any) -> Result:
    fields = data(body)
    if not get(fields, "streamProviderId") or get(fields, "streamProviderType") not in (4, 5):
        raise HTTPError(400, "Bad Request: streamProviderId and streamProviderType (4 or 5)")
    return 200, _form_link(get(fields, "referringObjectId"))


def _create_predefined_link(state: FakeState, p: P, q: Q, body: Any) -> Result:
    if not isinstance(body, Multipart) or not body.files:
        raise HTTPError(400, "Bad Request: multipart with a file is required")
    if not body.fields.get("streamProviderId"):
        raise HTTPError(400, "Bad Request: streamProviderId is required")
    return 200, _form_link(body.fields.get("referringObjectId"))


def _ticket(state: FakeState, p: P, q: Q, body: Any) -> Result:
    if not data(body).get("brand"):
        raise HTTPError(400, "Bad Request: brand is required")
    return 200, {"encpryptedString": secrets.token_urlsafe(48)}


def _get_context(state: FakeState, p: P, q: Q, body: Any) -> Result:
    obj = state.conversation(p["object"])
    return 200, {f"data.{k}": v for k, v in obj.context.items()}


def _set_context(state: FakeState, p: P, q: Q, body: Any) -> Result:
    obj = state.conversation(p["object"])
    props = data(body).get("properties")
    if not isinstance(props, dict):
        raise HTTPError(400, "Bad Request: data.properties must be an object")
    obj.context.update({k: str(v) for k, v in props.items()})
    return 200, {"id": str(obj.id)}


def _jump(state: FakeState, p: P, q: Q, body: Any) -> Result:
    obj = state.conversation(p["object"])
    address = data(body).get("address")
    if not isinstance(address, str) or ":" not in address:
        raise HTTPError(400, "Bad Request: address like '4079:n_8' is required")
    obj.context["__node"] = address
    return 200, {"id": None}


ROUTES: Routes = (
    ("POST", "/forms/createlink/{form}", _create_link),
    ("POST", "/forms/createpredefinedlink/{form}", _create_predefined_link),
    ("POST", "/auth/ticket", _ticket),
    ("GET", "/automation/objects/{object}/context", _get_context),
    ("POST", "/automation/objects/{object}/context", _set_context),
    ("POST", "/automation/objects/{object}/context/jump", _jump),
)
