"""Request bodies, with the exact wire form of the docs' examples.

``NewObject`` and ``NewChild`` unstructure to the inner object of ``{"data": {...}}`` (the
resources wrap it; multipart sends it unwrapped as the ``data`` form field). Field order is the
examples' key order. Anything the docs do not show goes through ``extra``, a typed escape hatch
merged into the body as given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from .._exceptions import ConfigurationError
from ._converter import Model, wire
from ._enums import ObjectStatusType, ObjectType, StreamProviderType

__all__ = [
    "ActivityLogEntry",
    "EmailAddress",
    "EmailAddressInput",
    "NewChild",
    "NewObject",
    "NewUser",
    "ObjectContent",
    "RemarkEntry",
]


@attrs.frozen(kw_only=True)
class EmailAddress(Model):
    """An email recipient in ``Content.to`` / ``Content.cc``: ``address`` and optional ``name``."""

    address: str = wire("address", default="")
    name: str | None = wire("name")


EmailAddressInput = EmailAddress | str | tuple[str, str] | Mapping[str, str]


def _address(value: EmailAddressInput, where: str) -> EmailAddress:
    if isinstance(value, EmailAddress):
        result = value
    elif isinstance(value, str):
        result = EmailAddress(address=value)
    elif isinstance(value, tuple) and len(value) == 2:
        result = EmailAddress(address=value[0], name=value[1])
    elif isinstance(value, Mapping) and "address" in value:
        result = EmailAddress(address=value["address"], name=value.get("name"))
    else:
        raise ConfigurationError(f"{where}: expected an address, (address, name) or EmailAddress")
    if "@" not in result.address:
        raise ConfigurationError(f"{where}: {result.address!r} is not an email address")
    return result


@attrs.frozen(kw_only=True)
class ObjectContent(Model):
    """The ``Content`` of a new object: ``subject``, ``to``, ``cc``, ``whatsapp_hsm_name``,
    ``whatsapp_localizable_params``, ``whatsapp_language_code`` (wire names as written)."""

    subject: str | None = wire("subject")
    to: tuple[EmailAddress | str, ...] = wire("to", factory=tuple)
    cc: tuple[EmailAddress | str, ...] = wire("cc", factory=tuple)
    whatsapp_hsm_name: str | None = wire("whatsapp_hsm_name")
    whatsapp_localizable_params: tuple[str, ...] = wire(
        "whatsapp_localizable_params", factory=tuple
    )
    whatsapp_language_code: str | None = wire("whatsapp_language_code")


@attrs.frozen(kw_only=True)
class NewUser(Model):
    """The ``User`` of a new object: ``UniqueId``, ``LastName``, ``FirstName``, ``Phone1``,
    ``Phone2``, ``Email``, ``Gender``, ``Remarks``."""

    unique_id: str | None = wire("UniqueId")
    last_name: str | None = wire("LastName")
    first_name: str | None = wire("FirstName")
    phone1: str | None = wire("Phone1")
    phone2: str | None = wire("Phone2")
    email: str | None = wire("Email")
    gender: str | None = wire("Gender")
    remarks: str | None = wire("Remarks")


def _required(value: str | None, name: str, where: str) -> str:
    if value is None or not str(value).strip():
        raise ConfigurationError(f"{where}: {name} is required")
    return value


def _channel_number(stream_provider_id: str | int | None, phone: str, where: str) -> str:
    """The channel's own number: ``stream_provider_id`` if given, else the customer's number,
    as in the docs' SMS and WhatsApp examples."""
    return phone_digits(stream_provider_id, where) if stream_provider_id else phone


def _recipients(to: Sequence[str | int], where: str) -> tuple[str, ...]:
    """``Content.to``: at least one number, each as :func:`phone_digits` takes it."""
    if not to:
        raise ConfigurationError(f"{where}: to needs at least one number")
    return tuple(phone_digits(n, f"{where} to[{i}]") for i, n in enumerate(to))


def phone_digits(value: str | int, where: str) -> str:
    """A phone number as CommBox takes it: digits with the country code, a leading + dropped."""
    text = str(value).strip().lstrip("+")
    if not (text.isascii() and text.isdigit()):
        raise ConfigurationError(
            f"{where}: {value!r} is not a phone number (digits with country code, no leading +/00)"
        )
    return text


@attrs.frozen(kw_only=True)
class NewObject(Model):
    """Body of ``POST /streams/{STREAM_ID}/objects`` (Create Object), inside ``{"data": ...}``.

    Wire names: ``SubStreamId``, ``Type``, ``StatusId``, ``StreamProviderType``,
    ``StreamProviderId``, ``UserStreamProviderId``, ``UserStreamProviderType``, ``UserIdentity``,
    ``ManagerId``, ``sendToClient``, ``Content``, ``Message`` (required), ``createChildObject``,
    ``User``. Build the common cases with :meth:`email`, :meth:`sms`, :meth:`sms_many`,
    :meth:`whatsapp_template` and :meth:`chat`.
    """

    sub_stream_id: int | None = wire("SubStreamId")
    type: ObjectType | None = wire("Type")
    status_id: ObjectStatusType | None = wire("StatusId")
    stream_provider_type: StreamProviderType | None = wire("StreamProviderType")
    stream_provider_id: str | None = wire("StreamProviderId")
    user_stream_provider_id: str | None = wire("UserStreamProviderId")
    user_stream_provider_type: StreamProviderType | None = wire("UserStreamProviderType")
    user_identity: int | None = wire("UserIdentity")
    manager_id: int | None = wire("ManagerId")
    send_to_client: bool | None = wire("sendToClient")
    content: ObjectContent | None = wire("Content")
    message: str | None = wire("Message")
    create_child_object: bool | None = wire("createChildObject")
    user: NewUser | None = wire("User")

    def validate(self) -> None:
        """Check what CommBox requires before anything is sent."""
        _required(self.message, "message", "NewObject")

    @classmethod
    def email(
        cls,
        *,
        subject: str,
        message: str,
        to: Sequence[EmailAddressInput],
        user_stream_provider_id: str,
        cc: Sequence[EmailAddressInput] = (),
        stream_provider_id: str | None = None,
        manager_id: int | None = None,
        status_id: ObjectStatusType | int = ObjectStatusType.OPEN,
        user: NewUser | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> NewObject:
        """An email conversation (Type 5, StreamProviderType 4). ``user_stream_provider_id`` is
        the sending mailbox; ``to``/``cc`` are addresses or ``(address, name)`` pairs."""
        where = "NewObject.email"
        if not to:
            raise ConfigurationError(f"{where}: to needs at least one recipient")
        return cls(
            type=ObjectType.MAIL,
            status_id=ObjectStatusType(status_id),
            stream_provider_type=StreamProviderType.MAIL,
            stream_provider_id=stream_provider_id,
            user_stream_provider_id=_required(
                user_stream_provider_id, "user_stream_provider_id", where
            ),
            user_stream_provider_type=StreamProviderType.MAIL,
            manager_id=manager_id,
            content=ObjectContent(
                subject=_required(subject, "subject", where),
                to=tuple(_address(a, f"{where} to[{i}]") for i, a in enumerate(to)),
                cc=tuple(_address(a, f"{where} cc[{i}]") for i, a in enumerate(cc)),
            ),
            message=_required(message, "message", where),
            user=user,
            extra=dict(extra or {}),
        )

    @classmethod
    def sms(
        cls,
        *,
        user_stream_provider_id: str | int,
        message: str,
        stream_provider_id: str | int | None = None,
        manager_id: int | None = None,
        status_id: ObjectStatusType | int = ObjectStatusType.OPEN,
        user: NewUser | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> NewObject:
        """An SMS conversation with one number (Type 4, StreamProviderType 5).

        ``user_stream_provider_id`` is the customer's phone number with country code;
        ``stream_provider_id`` defaults to it, as in the docs' example.
        """
        where = "NewObject.sms"
        phone = phone_digits(user_stream_provider_id, where)
        return cls._telephone(
            where,
            phone,
            status_id=status_id,
            stream_provider_id=_channel_number(stream_provider_id, phone, where),
            manager_id=manager_id,
            message=message,
            user=user,
            extra=extra,
        )

    @classmethod
    def _telephone(
        cls,
        where: str,
        phone: str,
        *,
        status_id: ObjectStatusType | int,
        message: str,
        user: NewUser | None,
        extra: Mapping[str, Any] | None,
        **fields: Any,
    ) -> NewObject:
        """What every conversation with a phone number (SMS, WhatsApp) shares: Type 4, the
        telephone provider type on both sides, the customer's number."""
        return cls(
            type=ObjectType.CONVERSATION,
            status_id=ObjectStatusType(status_id),
            stream_provider_type=StreamProviderType.TELEPHONE,
            user_stream_provider_id=phone,
            user_stream_provider_type=StreamProviderType.TELEPHONE,
            message=_required(message, "message", where),
            user=user,
            extra=dict(extra or {}),
            **fields,
        )

    @classmethod
    def sms_many(
        cls,
        *,
        to: Sequence[str | int],
        message: str,
        user_stream_provider_id: str | int,
        manager_id: int | None = None,
        status_id: ObjectStatusType | int = ObjectStatusType.OPEN,
        user: NewUser | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> NewObject:
        """One SMS to many numbers, sent without saving a conversation (``sendToClient``)."""
        where = "NewObject.sms_many"
        recipients = _recipients(to, where)
        return cls._telephone(
            where,
            phone_digits(user_stream_provider_id, where),
            status_id=status_id,
            manager_id=manager_id,
            send_to_client=True,
            content=ObjectContent(to=recipients),
            message=message,
            user=user,
            extra=extra,
        )

    @classmethod
    def whatsapp_template(
        cls,
        *,
        to: Sequence[str | int],
        whatsapp_hsm_name: str,
        whatsapp_language_code: str,
        message: str,
        user_stream_provider_id: str | int,
        whatsapp_localizable_params: Sequence[str] = (),
        stream_provider_id: str | int | None = None,
        manager_id: int | None = None,
        status_id: ObjectStatusType | int = ObjectStatusType.OPEN,
        user: NewUser | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> NewObject:
        """A WhatsApp template message (``Content.whatsapp_hsm_name`` and parameters), in the
        form of the Create Object page's WhatsApp example."""
        where = "NewObject.whatsapp_template"
        recipients = _recipients(to, where)
        phone = phone_digits(user_stream_provider_id, where)
        return cls._telephone(
            where,
            phone,
            status_id=status_id,
            stream_provider_id=_channel_number(stream_provider_id, phone, where),
            manager_id=manager_id,
            content=ObjectContent(
                to=recipients,
                whatsapp_hsm_name=_required(whatsapp_hsm_name, "whatsapp_hsm_name", where),
                whatsapp_localizable_params=tuple(str(p) for p in whatsapp_localizable_params),
                whatsapp_language_code=_required(
                    whatsapp_language_code, "whatsapp_language_code", where
                ),
            ),
            message=message,
            user=user,
            extra=extra,
        )

    @classmethod
    def chat(
        cls,
        *,
        message: str,
        user_stream_provider_id: str | int,
        user_stream_provider_type: StreamProviderType | int = StreamProviderType.TELEPHONE,
        user_identity: int | None = None,
        manager_id: int | None = None,
        create_child_object: bool | None = True,
        status_id: ObjectStatusType | int = ObjectStatusType.OPEN,
        user: NewUser | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> NewObject:
        """A chat conversation (Type 4, StreamProviderType 0), as the Chat example sends it."""
        where = "NewObject.chat"
        return cls(
            type=ObjectType.CONVERSATION,
            status_id=ObjectStatusType(status_id),
            stream_provider_type=StreamProviderType.COMMBOX,
            user_stream_provider_id=_required(
                str(user_stream_provider_id), "user_stream_provider_id", where
            ),
            user_stream_provider_type=StreamProviderType(user_stream_provider_type),
            user_identity=user_identity,
            manager_id=manager_id,
            message=_required(message, "message", where),
            create_child_object=create_child_object,
            user=user,
            extra=dict(extra or {}),
        )


@attrs.frozen(kw_only=True)
class NewChild(Model):
    """Body of Create Child (``POST .../objects/{OBJECT_ID}/child``), inside ``{"data": ...}``.

    Wire names: ``IsManager``, ``UserIdentity``, ``Type``, ``UserStreamProviderId``,
    ``UserStreamProviderType``, ``Message``, ``Content``. Use :meth:`from_agent` (sent to the
    customer) or :meth:`from_customer` (shown to the agent): the docs' two rule sets.
    """

    is_manager: bool | None = wire("IsManager")
    user_identity: int | None = wire("UserIdentity")
    type: ObjectType | None = wire("Type")
    user_stream_provider_id: str | None = wire("UserStreamProviderId")
    user_stream_provider_type: StreamProviderType | None = wire("UserStreamProviderType")
    message: str | None = wire("Message")
    content: dict[str, Any] | None = wire("Content")

    def validate(self) -> None:
        where = "NewChild"
        _required(self.message, "message", where)
        if self.type is None:
            raise ConfigurationError(f"{where}: type is required")
        _required(self.user_stream_provider_id, "user_stream_provider_id", where)
        if self.user_stream_provider_type is None:
            raise ConfigurationError(f"{where}: user_stream_provider_type is required")
        if self.is_manager and self.user_identity is None:
            raise ConfigurationError(f"{where}: a message from an agent needs user_identity")

    @classmethod
    def from_agent(
        cls,
        *,
        user_identity: int,
        user_stream_provider_id: str | int,
        user_stream_provider_type: StreamProviderType | int,
        message: str,
        type: ObjectType | int = ObjectType.CONVERSATION,
        content: dict[str, Any] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> NewChild:
        """A message on behalf of the agent ``user_identity``, sent to the customer whose email
        or phone is ``user_stream_provider_id``."""
        child = cls(
            is_manager=True,
            user_identity=user_identity,
            type=ObjectType(type),
            user_stream_provider_id=str(user_stream_provider_id),
            user_stream_provider_type=StreamProviderType(user_stream_provider_type),
            message=message,
            content=content,
            extra=dict(extra or {}),
        )
        child.validate()
        return child

    @classmethod
    def from_customer(
        cls,
        *,
        user_stream_provider_id: str | int,
        user_stream_provider_type: StreamProviderType | int,
        message: str,
        type: ObjectType | int = ObjectType.CONVERSATION,
        content: dict[str, Any] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> NewChild:
        """A message on behalf of the customer ``user_stream_provider_id``, shown to the agent."""
        child = cls(
            type=ObjectType(type),
            user_stream_provider_id=str(user_stream_provider_id),
            user_stream_provider_type=StreamProviderType(user_stream_provider_type),
            message=message,
            content=content,
            extra=dict(extra or {}),
        )
        child.validate()
        return child


@attrs.frozen(kw_only=True)
class ActivityLogEntry(Model):
    """Body of ``POST /objects/{OBJECT_ID}/activitylog``: ``Text``, ``Source``, ``ManagerId``."""

    text: str | None = wire("Text")
    source: str | None = wire("Source")
    manager_id: int | None = wire("ManagerId")


@attrs.frozen(kw_only=True)
class RemarkEntry(Model):
    """Body of ``POST /objects/{OBJECT_ID}/remarks``: ``Text``, ``ManagerId``."""

    text: str | None = wire("Text")
    manager_id: int | None = wire("ManagerId")
