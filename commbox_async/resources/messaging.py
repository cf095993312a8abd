"""``cb.sms`` and ``cb.whatsapp``: texts and WhatsApp templates sent through a channel's
encrypted id."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import attrs

from .._base_client import TokenProvider, TokenSource
from .._exceptions import ConfigurationError
from .._files import Attachment, AttachmentInput
from .._response import to_raw_response
from ..models import EmarsysTemplate, RecipientResult, TemplateMessage, UploadedMedia
from ..models.requests import phone_digits
from ._resource import APIResource, require_encrypted, require_model

__all__ = [
    "MAX_TEMPLATE_RECIPIENTS",
    "TEMPLATE_PATH",
    "Sms",
    "SmsWithRawResponse",
    "WhatsApp",
    "WhatsAppWithRawResponse",
    "template_request",
]

#: The v2 template endpoint takes at most this many recipients per call.
MAX_TEMPLATE_RECIPIENTS = 20


class Sms(APIResource):
    """SMS (texting) through a channel's encrypted id."""

    async def send(self, encrypted_stream_id: str, number: str | int, message: str) -> None:
        """Send a text: ``POST /sms/sendsms/{ENCRYPTED_STREAM_ID}`` with
        ``{"data": {"Number", "Message"}}``. The numeric stream id is refused before sending."""
        if not message:
            raise ConfigurationError("an SMS needs a message")
        await self._client._request(
            "POST",
            "/sms/sendsms/{encrypted_stream_id}",
            path_params={"encrypted_stream_id": require_encrypted(encrypted_stream_id)},
            json={"data": {"Number": phone_digits(number, "number"), "Message": message}},
        )

    async def send_initial_text(self, encrypted_stream_id: str, phone_number: str | int) -> None:
        """Send the channel's initial text to a number:
        ``POST /sms/sendinitialtext/{ENCRYPTED_STREAM_ID}/{PHONE_NUMBER}``."""
        await self._client._request(
            "POST",
            "/sms/sendinitialtext/{encrypted_stream_id}/{phone_number}",
            path_params={
                "encrypted_stream_id": require_encrypted(encrypted_stream_id),
                "phone_number": phone_digits(phone_number, "phone_number"),
            },
        )


TEMPLATE_PATH = "/v2/whatsapp/sendtemplatedmessage/{encrypted_stream_id}"


def template_request(
    encrypted_stream_id: str, messages: Sequence[TemplateMessage] | TemplateMessage
) -> tuple[str, dict[str, object], dict[str, Any]]:
    """The checked path, path parameters and body of one v2 template send (also what
    ``cb.bulk`` sends, reading each recipient's result on its own)."""
    if isinstance(messages, TemplateMessage):
        messages = [messages]
    if not messages:
        raise ConfigurationError("send_template needs at least one TemplateMessage")
    if len(messages) > MAX_TEMPLATE_RECIPIENTS:
        raise ConfigurationError(
            f"send_template takes at most {MAX_TEMPLATE_RECIPIENTS} recipients per call, "
            f"got {len(messages)} (cb.bulk.send batches larger sends)"
        )
    for i, m in enumerate(messages):
        require_model(
            m,
            TemplateMessage,
            param=f"messages[{i}]",
            method="cb.whatsapp.send_template()",
            build="TemplateMessage(to=..., name=..., language=...)",
        ).validate()
    return (
        TEMPLATE_PATH,
        {"encrypted_stream_id": require_encrypted(encrypted_stream_id)},
        {"data": [m.to_wire() for m in messages]},
    )


def _form_time(value: datetime | str | int | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(int(value))


class WhatsApp(APIResource):
    """WhatsApp templates, media, contact checks and campaigns."""

    async def send_template(
        self, encrypted_stream_id: str, messages: Sequence[TemplateMessage]
    ) -> builtins.list[RecipientResult]:
        """Send an approved template to up to 20 recipients:
        ``POST /v2/whatsapp/sendtemplatedmessage/{ENCRYPTED_STREAM_ID}`` with
        ``{"data": [TemplateMessage, ...]}``.

        Returns one :class:`~commbox_async.models.RecipientResult` per recipient (``id``,
        ``status``, ``object_id``, or ``failed``) for HTTP 200 and for 206 alike: a partial
        failure is data, not an exception. More than 20 messages is refused before sending
        (``cb.bulk.send`` batches them).
        """
        path, path_params, body = template_request(encrypted_stream_id, messages)
        envelope = await self._client._request(
            "POST", path, path_params=path_params, json=body, allow_partial=True
        )
        return self._list(envelope, RecipientResult)

    async def upload_media(self, encrypted_stream_id: str, file: AttachmentInput) -> UploadedMedia:
        """Upload a file to WhatsApp's servers: ``POST /whatsapp/uploadmedia/{ENCRYPTED_STREAM_ID}``
        (multipart, field ``pic``). Returns its ``filename`` and the media ``id`` to use in a
        template header."""
        attachment = attrs.evolve(Attachment.coerce(file), field="pic")
        path = "/whatsapp/uploadmedia/{encrypted_stream_id}"
        envelope = await self._client._request(
            "POST",
            path,
            path_params={"encrypted_stream_id": require_encrypted(encrypted_stream_id)},
            files=[attachment],
        )
        return self._single(envelope, UploadedMedia, method="POST", path=path)

    async def validate_contact(self, encrypted_stream_id: str, phone_number: str | int) -> bool:
        """Whether a number has WhatsApp:
        ``GET /whatsapp/validatecontact/{ENCRYPTED_STREAM_ID}/{PHONE_NUMBER}`` (``valid``)."""
        envelope = await self._client._request(
            "GET",
            "/whatsapp/validatecontact/{encrypted_stream_id}/{phone_number}",
            path_params={
                "encrypted_stream_id": require_encrypted(encrypted_stream_id),
                "phone_number": phone_digits(phone_number, "phone_number"),
            },
        )
        data = envelope.data
        valid = data.get("valid") if isinstance(data, dict) else data
        return valid is True or (isinstance(valid, str) and valid.strip().lower() == "true")

    async def campaign(
        self,
        *,
        audience_file: AttachmentInput | None,
        stream_id: int | str,
        template_name: str,
        language_code: str,
        notify_mail: str | None = None,
        scheduled_date: datetime | str | int | None = None,
        expiration_date: datetime | str | int | None = None,
        save_as_new_audience: bool | None = None,
        campaign_name: str | None = None,
        audience_id: str | None = None,
        substream_id: int | str | None = None,
        automation_script_id: int | str | None = None,
        new_audience_name: str | None = None,
    ) -> None:
        """Send a template campaign: ``POST /whatsapp/campaign`` as multipart/form-data with
        ``audience_file`` (a CSV or Excel file of numbers; or ``None`` with ``audience_id``
        naming a saved audience), ``notify_mail``, ``scheduled_date``, ``expiration_data``
        (sic; from ``expiration_date``), ``save_as_new_audience``, ``template_name``,
        ``language_code``, ``campaign_name``, ``audience_id``, ``stream_id``, ``substream_id``,
        ``automation_script_id``, ``new_audience_name``. Dates may be datetimes (sent as
        ``2025-01-22T11:15:55Z``), strings or unix seconds.
        """
        if audience_file is None and not audience_id:
            raise ConfigurationError("a campaign needs audience_file or audience_id")
        for name, value in (("template_name", template_name), ("language_code", language_code)):
            if not value:
                raise ConfigurationError(f"a campaign needs {name}")
        fields: dict[str, Any] = {
            "notify_mail": notify_mail,
            "scheduled_date": _form_time(scheduled_date),
            "expiration_data": _form_time(expiration_date),
            "save_as_new_audience": None
            if save_as_new_audience is None
            else ("true" if save_as_new_audience else "false"),
            "template_name": template_name,
            "language_code": language_code,
            "campaign_name": campaign_name,
            "audience_id": audience_id,
            "stream_id": str(stream_id),
            "substream_id": None if substream_id is None else str(substream_id),
            "automation_script_id": None
            if automation_script_id is None
            else str(automation_script_id),
            "new_audience_name": new_audience_name,
        }
        files = (
            [attrs.evolve(Attachment.coerce(audience_file), field="audience_file")]
            if audience_file is not None
            else None
        )
        await self._client._request(
            "POST",
            "/whatsapp/campaign",
            data={k: v for k, v in fields.items() if v is not None},
            files=files,
            multipart=True,
        )

    async def emarsys_send_template(
        self, encrypted_stream_id: str, template: EmarsysTemplate, *, jwt: TokenSource
    ) -> builtins.list[RecipientResult]:
        """Send a template the Emarsys way:
        ``POST /emarsys/sendwhatsapptemplate/{ENCRYPTED_STREAM_ID}`` with the flat, dotted
        body of :class:`~commbox_async.models.EmarsysTemplate`.

        This endpoint authenticates with a JWT made with the Emarsys module's secret, not the
        API token: pass it (or a callable returning it) as ``jwt``; it is never logged.
        Returns one result per recipient for 200 and 206 alike.
        """
        require_model(
            template,
            EmarsysTemplate,
            param="template",
            method="cb.whatsapp.emarsys_send_template()",
            build="EmarsysTemplate(...)",
        ).validate()
        # The JWT leaves this frame's locals at once: a failure of the call, rendered with
        # its frames' locals, must not show it.
        jwt_provider = TokenProvider(jwt)
        del jwt
        envelope = await self._client._request(
            "POST",
            "/emarsys/sendwhatsapptemplate/{encrypted_stream_id}",
            path_params={"encrypted_stream_id": require_encrypted(encrypted_stream_id)},
            json=template.to_wire(),
            allow_partial=True,
            token=jwt_provider,
        )
        return self._list(envelope, RecipientResult)


class SmsWithRawResponse:
    """``cb.with_raw_response.sms``: each method of :class:`Sms`, returning an
    :class:`~commbox_async.APIResponse` around its usual value."""

    def __init__(self, resource: Sms) -> None:
        self.send = to_raw_response(resource.send)
        self.send_initial_text = to_raw_response(resource.send_initial_text)


class WhatsAppWithRawResponse:
    """``cb.with_raw_response.whatsapp``: each method of :class:`WhatsApp`, returning an
    :class:`~commbox_async.APIResponse` around its usual value."""

    def __init__(self, resource: WhatsApp) -> None:
        self.send_template = to_raw_response(resource.send_template)
        self.upload_media = to_raw_response(resource.upload_media)
        self.validate_contact = to_raw_response(resource.validate_contact)
        self.campaign = to_raw_response(resource.campaign)
        self.emarsys_send_template = to_raw_response(resource.emarsys_send_template)
