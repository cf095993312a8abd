"""Outbound messaging beyond conversations: WhatsApp templates (v2 and Emarsys), per-recipient
results, media uploads, form links and login tickets."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

import attrs

from .._exceptions import ConfigurationError
from ._converter import JsonObject, Model, wire
from ._enums import ObjectStatusType
from .requests import NewUser, phone_digits

__all__ = [
    "EmarsysTemplate",
    "FormLink",
    "RecipientResult",
    "TemplateComponent",
    "TemplateMessage",
    "TemplateObjectData",
    "Ticket",
    "UploadedMedia",
]


class TemplateComponent:
    """Builders for a WhatsApp template's ``components`` (the shapes of the spec's examples).

    Each returns the plain JSON dict; pass any other component Meta accepts as a dict.
    """

    @staticmethod
    def body(*texts: str) -> dict[str, Any]:
        """``{"type": "body", "parameters": [{"type": "text", "text": ...}, ...]}``."""
        return {"type": "body", "parameters": [{"type": "text", "text": t} for t in texts]}

    @staticmethod
    def header_text(text: str) -> dict[str, Any]:
        return {"type": "header", "parameters": [{"type": "text", "text": text}]}

    @staticmethod
    def header_media(
        kind: str, *, link: str | None = None, id: str | None = None, filename: str | None = None
    ) -> dict[str, Any]:
        """A header with an ``image``, ``video`` or ``document``, by ``link`` or by the media
        ``id`` that :meth:`~commbox_async.resources.WhatsApp.upload_media` returned."""
        if kind not in ("image", "video", "document"):
            raise ConfigurationError(
                f"header media kind must be image, video or document: {kind!r}"
            )
        if (link is None) == (id is None):
            raise ConfigurationError("header media needs exactly one of link= or id=")
        media: dict[str, Any] = {"link": link} if link is not None else {"id": id}
        if filename is not None:
            media["filename"] = filename
        return {"type": "header", "parameters": [{"type": kind, kind: media}]}

    @staticmethod
    def button(*texts: str, index: int = 0, sub_type: str = "url") -> dict[str, Any]:
        """A dynamic button: ``{"type": "button", "sub_type", "index", "parameters"}``."""
        return {
            "type": "button",
            "sub_type": sub_type,
            "index": index,
            "parameters": [{"type": "text", "text": t} for t in texts],
        }


@attrs.frozen(kw_only=True)
class TemplateObjectData(Model):
    """``object_data`` of a v2 template message: the conversation CommBox creates for it.

    Wire names: ``createChildObject``, ``SubStreamId``, ``StatusId``, ``ManagerId``,
    ``Content``, ``User`` (a :class:`NewUser`).
    """

    create_child_object: bool | None = wire("createChildObject")
    sub_stream_id: int | None = wire("SubStreamId")
    status_id: ObjectStatusType | None = wire("StatusId")
    manager_id: int | None = wire("ManagerId")
    content: dict[str, Any] | None = wire("Content")
    user: NewUser | None = wire("User")


@attrs.frozen(kw_only=True)
class TemplateMessage:
    """One recipient of ``POST /v2/whatsapp/sendtemplatedmessage/{ENCRYPTED_STREAM_ID}``.

    Wire form (one item of ``data``)::

        {"schedule": 1739365010,
         "template_data": {"to": "19172537000",
                           "template": {"name": ..., "language": {"code": ...},
                                        "components": [...]}},
         "object_data": {...}}

    ``schedule`` (a unix time) and ``object_data`` are optional; build ``components`` with
    :class:`TemplateComponent`. ``extra`` is merged into the item as given.
    """

    to: str
    name: str
    language: str
    components: tuple[Mapping[str, Any], ...] = ()
    schedule: int | None = None
    object_data: TemplateObjectData | None = None
    #: Keys merged into the item as given (the typed escape hatch for fields not shown).
    extra: Mapping[str, Any] = attrs.field(factory=dict)

    @classmethod
    def create(
        cls,
        *,
        to: str | int,
        name: str,
        language: str,
        components: Sequence[Mapping[str, Any]] = (),
        schedule: int | None = None,
        object_data: TemplateObjectData | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> TemplateMessage:
        """Validated construction (phone digits, template name and language present)."""
        message = cls(
            to=phone_digits(to, "TemplateMessage.to"),
            name=name,
            language=language,
            components=tuple(components),
            schedule=schedule,
            object_data=object_data,
            extra=dict(extra or {}),
        )
        message.validate()
        return message

    def validate(self) -> None:
        phone_digits(self.to, "TemplateMessage.to")
        if not self.name or not self.name.strip():
            raise ConfigurationError("TemplateMessage: name (the approved template) is required")
        if not self.language or not self.language.strip():
            raise ConfigurationError("TemplateMessage: language (e.g. 'en') is required")

    def to_wire(self) -> dict[str, Any]:
        item: dict[str, Any] = {}
        if self.schedule is not None:
            item["schedule"] = self.schedule
        item["template_data"] = {
            "to": self.to,
            "template": {
                "name": self.name,
                "language": {"code": self.language},
                "components": [dict(c) for c in self.components],
            },
        }
        if self.object_data is not None:
            item["object_data"] = self.object_data.to_wire()
        item.update(self.extra)
        return item


@attrs.frozen(kw_only=True)
class RecipientResult(Model):
    """One recipient's outcome of a WhatsApp template send (HTTP 200 or 206).

    Wire names: ``recipient``, ``id`` (WhatsApp's message id), ``status`` (200 for sent),
    ``object_id`` (the conversation created), ``failed`` (the reason, when it failed).
    """

    recipient: str | None = wire("recipient")
    id: str | None = wire("id")
    status: int | None = wire("status")
    object_id: int | None = wire("object_id")
    failed: JsonObject | None = wire("failed")

    @property
    def ok(self) -> bool:
        return self.failed is None and self.status is not None and 200 <= self.status < 300


@attrs.frozen(kw_only=True)
class UploadedMedia(Model):
    """``POST /whatsapp/uploadmedia/{ENCRYPTED_STREAM_ID}``: ``filename`` and the media ``id``."""

    filename: str | None = wire("filename")
    id: str | None = wire("id")


@attrs.frozen(kw_only=True)
class FormLink(Model):
    """A form link (``POST /forms/createlink/{FORM_ID}``): ``conversation_id``, ``form_link``."""

    conversation_id: int | None = wire("conversation_id")
    form_link: str | None = wire("form_link")


@attrs.frozen(kw_only=True)
class Ticket(Model):
    """``POST /auth/ticket``: the login ticket, wire name ``encpryptedString`` (sic;
    ``encryptedString`` accepted too). Never shown in a repr."""

    ticket: str | None = wire("encpryptedString", "encryptedString", secret=True)

    def _require(self) -> str:
        if not self.ticket:
            raise ConfigurationError("CommBox returned no ticket")
        return self.ticket

    def agent_login_url(self, login_url: str) -> str:
        """``{login_url}?ta={ticket}``: the agent login page, bypassing the password."""
        return f"{login_url.rstrip('/')}?ta={quote(self._require(), safe='')}"

    def chat_url(self, apps_url: str, encrypted_stream_id: str) -> str:
        """``{apps_url}/chat/{encrypted channel id}?ta={ticket}``: the customer chat, already
        identified (e.g. ``https://apps.commbox.com/chat/nex9...%3d%3d?ta=...``)."""
        channel = quote(encrypted_stream_id, safe="")
        return f"{apps_url.rstrip('/')}/chat/{channel}?ta={quote(self._require(), safe='')}"


_EMARSYS_USER_KEYS = (
    ("unique_id", "uniqueid"),
    ("last_name", "lastname"),
    ("first_name", "firstname"),
    ("phone1", "phone1"),
    ("phone2", "phone2"),
    ("email", "email"),
    ("gender", "gender"),
    ("remarks", "remarks"),
)


@attrs.frozen(kw_only=True)
class EmarsysTemplate:
    """Body of ``POST /emarsys/sendwhatsapptemplate/{ENCRYPTED_STREAM_ID}``: flat, dotted keys.

    Wire names, in the spec examples' order: ``to``, ``templateName``,
    ``template.language.code``, ``header.type``, ``header.value``, ``header.filename``,
    ``button.value``, ``body.1.value``..., ``object.substreamid``, ``object.statusid``,
    ``object.content`` (a JSON string), ``object.user.*``, ``schedule``.
    """

    to: str
    template_name: str
    language_code: str
    header_type: str | None = None
    header_value: str | None = None
    header_filename: str | None = None
    button_value: str | None = None
    body_values: tuple[str, ...] = ()
    object_sub_stream_id: int | None = None
    object_status_id: int | None = None
    object_content: Mapping[str, Any] | str | None = None
    object_user: NewUser | None = None
    schedule: int | None = None
    #: Keys merged into the body as given (e.g. ``body.4.value``, ``object.user.gender``).
    extra: Mapping[str, Any] = attrs.field(factory=dict)

    def validate(self) -> None:
        phone_digits(self.to, "EmarsysTemplate.to")
        if not self.template_name:
            raise ConfigurationError("EmarsysTemplate: template_name is required")
        if not self.language_code:
            raise ConfigurationError("EmarsysTemplate: language_code is required")
        if self.header_type not in (None, "text", "image", "document", "video"):
            raise ConfigurationError(
                f"EmarsysTemplate: header_type must be text, image, document or video, "
                f"got {self.header_type!r}"
            )

    def to_wire(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "to": self.to,
            "templateName": self.template_name,
            "template.language.code": self.language_code,
        }
        for key, value in (
            ("header.type", self.header_type),
            ("header.value", self.header_value),
            ("header.filename", self.header_filename),
            ("button.value", self.button_value),
        ):
            if value is not None:
                body[key] = value
        for i, text in enumerate(self.body_values, start=1):
            body[f"body.{i}.value"] = text
        if self.object_sub_stream_id is not None:
            body["object.substreamid"] = self.object_sub_stream_id
        if self.object_status_id is not None:
            body["object.statusid"] = int(self.object_status_id)
        if self.object_content is not None:
            content = self.object_content
            body["object.content"] = (
                content if isinstance(content, str) else json.dumps(dict(content))
            )
        if self.object_user is not None:
            for attr, key in _EMARSYS_USER_KEYS:
                value = getattr(self.object_user, attr)
                if value is not None:
                    body[f"object.user.{key}"] = value
        if self.schedule is not None:
            body["schedule"] = self.schedule
        body.update(self.extra)
        return body
