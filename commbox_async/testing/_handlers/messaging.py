"""Sends: SMS, WhatsApp templates (direct and through Emarsys), WhatsApp media and campaigns."""

from __future__ import annotations

import json
import secrets
from typing import Any

from .._state import FakeState
from .._wire import Described, HTTPError
from ._common import Multipart, P, Q, Result, Routes, data, get

#: The most recipients one WhatsApp template call takes.
MAX_RECIPIENTS = 20


def _encrypted(state: FakeState, value: str) -> str:
    if value.isdecimal():
        raise HTTPError(400, "Bad Request: this endpoint needs the encrypted stream id")
    state.stream_ids(value, creating=True)
    return value


def _phone_ok(value: Any) -> bool:
    text = str(value)
    return text.isascii() and text.isdigit() and not text.startswith("000")


def _send_sms(state: FakeState, p: P, q: Q, body: Any) -> Result:
    stream = _encrypted(state, p["stream"])
    fields = data(body)
    number, message = get(fields, "Number"), get(fields, "Message")
    if not _phone_ok(number) or not message:
        raise HTTPError(400, "Bad Request: Number and Message are required")
    state.sms_sent.append({"stream": stream, "number": str(number), "message": message})
    return 200, ""


def _send_initial(state: FakeState, p: P, q: Q, body: Any) -> Result:
    stream = _encrypted(state, p["stream"])
    if not _phone_ok(p["phone"]):
        raise HTTPError(400, f"Bad Request: invalid phone number {p['phone']}")
    state.sms_sent.append({"stream": stream, "number": p["phone"], "message": None})
    return 200, ""


def _wa_result(state: FakeState, stream: str, to: str, item: dict[str, Any]) -> dict[str, Any]:
    """Send one template to ``to`` (opening a conversation if ``item`` has ``object_data``)."""
    if not _phone_ok(to):
        return {"recipient": to, "status": 400, "failed": "invalid — Not a valid WhatsApp user"}
    result: dict[str, Any] = {
        "recipient": to,
        "id": "wamid." + secrets.token_hex(8),
        "status": 200,
    }
    obj_data = item.get("object_data")
    if isinstance(obj_data, dict):
        object_id = state.add_conversation(
            stream,
            message=f"template {item.get('name', '')}".strip(),
            status=int(obj_data.get("StatusId") or 1),
            user_stream_provider_id=to,
        )
        content = obj_data.get("Content")
        if isinstance(content, dict):  # the conversation keeps it, as Create Object's does
            state.objects[object_id].record["content"] = json.dumps(content)
        result["object_id"] = object_id
    state.whatsapp_sent.append({"stream": stream, "to": to, "item": item, **result})
    return result


def _wa_answer(results: list[dict[str, Any]]) -> Result:
    if all(r["status"] == 200 for r in results):
        return 200, results
    if any(r["status"] == 200 for r in results):
        return 206, results
    raise HTTPError(400, "Bad Request: no recipient could be sent")


def _template_items(body: Any) -> list[Any]:
    items = body.get("data") if isinstance(body, dict) else None
    if not isinstance(items, list) or not items:
        raise HTTPError(400, 'Bad Request: the body must be {"data": [...]}')
    if len(items) > MAX_RECIPIENTS:
        raise HTTPError(400, f"Bad Request: at most {MAX_RECIPIENTS} recipients per call")
    return items


def _send_template(state: FakeState, p: P, q: Q, body: Any) -> Result:
    stream = _encrypted(state, p["stream"])
    results = []
    for item in _template_items(body):
        tpl = item.get("template_data") if isinstance(item, dict) else None
        if not isinstance(tpl, dict) or not isinstance(tpl.get("template"), dict):
            raise HTTPError(400, "Bad Request: template_data.template is required")
        name = tpl["template"].get("name")
        results.append(_wa_result(state, stream, str(tpl.get("to", "")), {**item, "name": name}))
    return _wa_answer(results)


def _emarsys(state: FakeState, p: P, q: Q, body: Any) -> Result:
    stream = _encrypted(state, p["stream"])
    if not isinstance(body, dict) or not all(
        body.get(k) for k in ("to", "templateName", "template.language.code")
    ):
        raise HTTPError(400, "Bad Request: to, templateName and template.language.code")
    item = {"name": body["templateName"]}
    if any(k.startswith("object.") for k in body):
        item["object_data"] = {"StatusId": body.get("object.statusid", 1)}
    return _wa_answer([_wa_result(state, stream, str(body["to"]), item)])


def _upload_media(state: FakeState, p: P, q: Q, body: Any) -> Result:
    _encrypted(state, p["stream"])
    if not isinstance(body, Multipart) or not any(f["field"] == "pic" for f in body.files):
        raise HTTPError(400, "Bad Request: a multipart 'pic' file is required")
    out = []
    for f in body.files:
        media = {"filename": f["filename"], "id": str(state.new_id())}
        state.media.append({**media, "size": f["size"]})
        out.append(media)
    return 200, out


def _validate_contact(state: FakeState, p: P, q: Q, body: Any) -> Result:
    _encrypted(state, p["stream"])
    return 200, {"valid": _phone_ok(p["phone"])}


def _campaign(state: FakeState, p: P, q: Q, body: Any) -> Result:
    if not isinstance(body, Multipart):
        raise HTTPError(400, "Bad Request: multipart/form-data is required")
    fields = body.fields
    for name in ("template_name", "language_code", "stream_id"):
        if not fields.get(name):
            raise HTTPError(400, f"Bad Request: {name} is required")
    if not body.files and not fields.get("audience_id"):
        raise HTTPError(400, "Bad Request: audience_file or audience_id is required")
    state.campaigns.append({"fields": fields, "files": body.files})
    raise Described(200, "Campaign created")


ROUTES: Routes = (
    ("POST", "/sms/sendsms/{stream}", _send_sms),
    ("POST", "/sms/sendinitialtext/{stream}/{phone}", _send_initial),
    ("POST", "/v2/whatsapp/sendtemplatedmessage/{stream}", _send_template),
    ("POST", "/emarsys/sendwhatsapptemplate/{stream}", _emarsys),
    ("POST", "/whatsapp/uploadmedia/{stream}", _upload_media),
    ("GET", "/whatsapp/validatecontact/{stream}/{phone}", _validate_contact),
    ("POST", "/whatsapp/campaign", _campaign),
)
