"""``cb.forms``, ``cb.auth`` and ``cb.automation``: form links, login tickets, and a
conversation's automation (bot) context."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from .._exceptions import ConfigurationError, DecodeError
from .._files import Attachment, AttachmentInput
from .._response import to_raw_response
from .._secret import clear_locals
from ..models import FormLink, StreamProviderType, Ticket
from ._resource import APIResource, Id, require_int

__all__ = [
    "Auth",
    "AuthWithRawResponse",
    "Automation",
    "AutomationWithRawResponse",
    "Forms",
    "FormsWithRawResponse",
]


class Forms(APIResource):
    """Links to CommBox forms, sent to a customer."""

    async def create_link(
        self,
        form_id: Id,
        *,
        stream_provider_id: str,
        stream_provider_type: StreamProviderType | int,
        referring_object_id: Id | None = None,
        auto_upload: bool | None = None,
        properties: Mapping[str, Any] | None = None,
    ) -> FormLink:
        """A link to a form for a customer: ``POST /forms/createlink/{FORM_ID}`` with
        ``{"data": {"streamProviderId", "streamProviderType", "referringObjectId",
        "autoUpload", "properties"}}`` (4 for an email, 5 for a phone number; ``properties``
        pre-fill the form's fields)."""
        if not stream_provider_id:
            raise ConfigurationError("create_link needs stream_provider_id (email or phone)")
        body: dict[str, Any] = {
            "streamProviderId": stream_provider_id,
            "streamProviderType": int(StreamProviderType(stream_provider_type)),
        }
        if referring_object_id is not None:
            body["referringObjectId"] = require_int(referring_object_id, "referring_object_id")
        if auto_upload is not None:
            body["autoUpload"] = bool(auto_upload)
        if properties is not None:
            body["properties"] = dict(properties)
        path = "/forms/createlink/{form_id}"
        envelope = await self._client._request(
            "POST", path, path_params={"form_id": form_id}, json={"data": body}
        )
        return self._single(envelope, FormLink, method="POST", path=path)

    async def create_predefined_link(
        self,
        form_id: Id,
        file: AttachmentInput,
        *,
        stream_provider_id: str,
        stream_provider_type: StreamProviderType | int,
        referring_object_id: Id | None = None,
    ) -> FormLink:
        """A link to a form pre-filled from a file: ``POST /forms/createpredefinedlink/{FORM_ID}``
        as multipart/form-data: ``streamProviderId``, ``streamProviderType``,
        ``referringObjectId`` and the file under an empty field name, as the spec shows."""
        if not stream_provider_id:
            raise ConfigurationError("create_predefined_link needs stream_provider_id")
        fields: dict[str, Any] = {
            "streamProviderId": stream_provider_id,
            "streamProviderType": str(int(StreamProviderType(stream_provider_type))),
        }
        if referring_object_id is not None:
            fields["referringObjectId"] = str(
                require_int(referring_object_id, "referring_object_id")
            )
        path = "/forms/createpredefinedlink/{form_id}"
        envelope = await self._client._request(
            "POST",
            path,
            path_params={"form_id": form_id},
            data=fields,
            files=[attrs.evolve(Attachment.coerce(file), field="")],
        )
        return self._single(envelope, FormLink, method="POST", path=path)


class Auth(APIResource):
    """Login tickets for agents and customers."""

    async def create_ticket(
        self,
        *,
        brand: str,
        username: str | None = None,
        email: str | None = None,
        unique_id: str | None = None,
        first_name: str | None = None,
        last_name: str | None = None,
        phone1: str | int | None = None,
        override_user_info: bool | None = None,
        one_time_use: bool | None = None,
    ) -> Ticket:
        """A login ticket: ``POST /auth/ticket`` with ``{"data": {"brand", "username",
        "email", "uniqueId", "firstName", "lastName", "phone1", "overrideUserInfo",
        "oneTimeUse"}}``.

        An agent ticket needs ``username`` and a strong identifier (``email`` or ``phone1``).
        Build the login URL with :meth:`Ticket.agent_login_url` or :meth:`Ticket.chat_url`.
        """
        if not brand:
            raise ConfigurationError("a ticket needs the business account name (brand)")
        if username is not None and email is None and phone1 is None:
            raise ConfigurationError(
                "an agent ticket needs a strong identifier: email= or phone1= (matching the "
                "agent's record)"
            )
        body: dict[str, Any] = {"brand": brand}
        for key, value in (
            ("username", username),
            ("email", email),
            ("uniqueId", unique_id),
            ("firstName", first_name),
            ("lastName", last_name),
            ("phone1", None if phone1 is None else str(phone1)),
            ("overrideUserInfo", override_user_info),
            ("oneTimeUse", one_time_use),
        ):
            if value is not None:
                body[key] = value
        path = "/auth/ticket"
        try:
            # No local holds the answer: a ticket that does not decode stays out of the
            # frames a traceback with locals shows.
            return self._single(
                await self._client._request("POST", path, json={"data": body}),
                Ticket,
                method="POST",
                path=path,
            )
        except DecodeError as exc:
            clear_locals(exc)
            raise


class Automation(APIResource):
    """A conversation's automation flow: its context variables, and jumps between nodes."""

    async def get_context(self, object_id: Id) -> dict[str, Any]:
        """The flow's variables: ``GET /automation/objects/{OBJECT_ID}/context`` (plain JSON,
        e.g. ``{"data.plus": "4"}``; the spec gives no schema)."""
        envelope = await self._client._request(
            "GET",
            "/automation/objects/{object_id}/context",
            path_params={"object_id": object_id},
        )
        data = envelope.data
        return dict(data) if isinstance(data, Mapping) else {}

    async def set_context(self, object_id: Id, properties: Mapping[str, Any]) -> None:
        """Insert variables: ``POST /automation/objects/{OBJECT_ID}/context`` with
        ``{"data": {"properties": {...}}}``."""
        if not isinstance(properties, Mapping) or not properties:
            raise ConfigurationError("set_context needs a non-empty mapping of properties")
        await self._client._request(
            "POST",
            "/automation/objects/{object_id}/context",
            path_params={"object_id": object_id},
            json={"data": {"properties": dict(properties)}},
        )

    async def jump(self, object_id: Id, address: str) -> None:
        """Move the flow to a node: ``POST /automation/objects/{OBJECT_ID}/context/jump`` with
        ``{"data": {"address": "4079:n_8"}}``."""
        if not address:
            raise ConfigurationError("jump needs the node address (e.g. '4079:n_8')")
        await self._client._request(
            "POST",
            "/automation/objects/{object_id}/context/jump",
            path_params={"object_id": object_id},
            json={"data": {"address": address}},
        )


class AuthWithRawResponse:
    """``cb.with_raw_response.auth``: each method of :class:`Auth`, returning an
    :class:`~commbox_async.APIResponse` around its usual value."""

    def __init__(self, resource: Auth) -> None:
        self.create_ticket = to_raw_response(resource.create_ticket)


class AutomationWithRawResponse:
    """``cb.with_raw_response.automation``: each method of :class:`Automation`, returning an
    :class:`~commbox_async.APIResponse` around its usual value."""

    def __init__(self, resource: Automation) -> None:
        self.get_context = to_raw_response(resource.get_context)
        self.set_context = to_raw_response(resource.set_context)
        self.jump = to_raw_response(resource.jump)


class FormsWithRawResponse:
    """``cb.with_raw_response.forms``: each method of :class:`Forms`, returning an
    :class:`~commbox_async.APIResponse` around its usual value."""

    def __init__(self, resource: Forms) -> None:
        self.create_link = to_raw_response(resource.create_link)
        self.create_predefined_link = to_raw_response(resource.create_predefined_link)
