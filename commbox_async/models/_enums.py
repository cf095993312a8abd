"""CommBox's enums (Developer Guide "Enums" and the webhooks page), open to values added later.

A value the enum does not know decodes to a pseudo-member that keeps the raw number, compares
equal to it and encodes back unchanged, so a new CommBox value is never an exception. Pseudo-
members are made afresh each time and never stored in the class: a flood of unknown values
(200,000 in one burst of webhooks) leaves nothing behind once the events are gone.
"""

from __future__ import annotations

import enum
import functools
import typing
from typing import Any, TypeVar

from .._exceptions import brief

__all__ = [
    "ModuleType",
    "ObjectActivityType",
    "ObjectStatusType",
    "ObjectType",
    "OpenIntEnum",
    "Presence",
    "StreamProviderType",
    "TagType",
    "UserPermission",
    "coerce_enum",
]

E = TypeVar("E", bound="OpenIntEnum")


def _norm(name: str) -> str:
    return name.replace(" ", "").replace("_", "").replace("-", "").lower()


class OpenIntEnum(enum.IntEnum):
    """An IntEnum that accepts unknown integers as ``UNKNOWN_<n>`` pseudo-members.

    A pseudo-member equals (and hashes as) its number, so compare with ``==``, not ``is``:
    two decodings of the same unknown value are equal but not the same object.
    """

    @classmethod
    def _missing_(cls, value: object) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            pseudo = int.__new__(cls, value)
            pseudo._name_ = f"UNKNOWN_{value}"
            pseudo._value_ = value
            return pseudo  # not cached: the class must not grow with what CommBox sends
        return None

    @property
    def is_known(self) -> bool:
        return not self._name_.startswith("UNKNOWN_")

    @classmethod
    def from_name(cls: type[E], name: str) -> E | None:
        """The member for a name as either docs page writes it ("System Message", "WhatsApp")."""
        return _names(cls).get(_norm(name))


@functools.cache
def _names(cls: type[E]) -> dict[str, E]:
    table = {_norm(n): m for n, m in cls.__members__.items()}
    for alias, value in _DOC_NAMES.get(cls, {}).items():
        table[_norm(alias)] = cls(value)
    return table


def coerce_enum(cls: type[E], value: Any) -> E:
    """Decode a number, a number in a string ("5") or a documented name into ``cls``."""
    if isinstance(value, cls):
        return value
    if isinstance(value, bool):
        raise TypeError(f"expected a {cls.__name__} number, got a bool")
    if isinstance(value, int):
        return cls(value)
    if isinstance(value, float) and value.is_integer():
        return cls(int(value))
    if isinstance(value, str):
        text = value.strip()
        if text.removeprefix("-").isdecimal():  # one sign at most: int() refuses "--5"
            number = int(text)
            member = cls._value2member_map_.get(number)  # an Enum to type checkers: it is a cls
            return cls(number) if member is None else typing.cast(E, member)
        member = cls.from_name(text)
        if member is not None:
            return member
        raise ValueError(f"{brief(value)} is not a {cls.__name__} number or name")
    raise TypeError(f"expected a {cls.__name__} number, got {type(value).__name__}")


class ObjectType(OpenIntEnum):
    """The kind of a conversation or message (``Type``)."""

    TEXT = 0
    LINK = 1
    PHOTO = 2
    VIDEO = 3
    CONVERSATION = 4
    MAIL = 5
    AUDIO = 6
    LOCATION = 7
    VOICE = 8
    REVIEW = 9
    FORM = 10
    SYSTEM_MESSAGE = 11
    OPTION = 12
    INPUT_DATA = 13
    CONTACTS = 14
    ALBUM = 15
    TEMPLATE_MESSAGE = 16
    CAMPAIGN_MESSAGE = 17
    SURVEY_MESSAGE = 18


class ObjectStatusType(OpenIntEnum):
    """A conversation's status (``StatusId``)."""

    OPEN = 1
    RESOLVED = 2
    FORWARD = 3
    IRRELEVANT = 4
    DELETED = 5
    FORWARD_REPLY = 6
    DRAFT = 7
    IN_PROCESS = 8
    SCHEDULED = 9
    FOLLOW_UP = 10
    AUTOMATED = 11
    SENT = 13
    ARCHIVE = 14
    PENDING = 15


class StreamProviderType(OpenIntEnum):
    """The channel provider of an identity or object (``StreamProviderType``)."""

    COMMBOX = 0
    FACEBOOK = 1
    TWITTER = 2
    YOUTUBE = 3
    MAIL = 4
    TELEPHONE = 5
    ANONYMOUS = 6
    WHATSAPP = 7
    WEB = 8
    APPLE_APP_STORE = 9
    INSTAGRAM = 10
    GOOGLE = 11
    TELEGRAM = 12
    GOOGLE_MY_BUSINESS = 13
    MICROSOFT365 = 14
    GMAIL = 15
    WHATSAPP_CLOUD = 16
    SALESFORCE = 17


class ObjectActivityType(OpenIntEnum):
    """Activity types: the union of the Developer Guide's and the webhooks page's lists.

    Where the pages name a value differently, both names work: ``FORWARD_REPLY`` is
    ``REPLY_TO_FORWARDED_OBJECT``, ``ASSIGN_CHANGE`` is ``NEW_MANAGER_ASSIGNMENT`` and
    ``ATTACHMENT`` is ``UPDATE_OBJECT_ATTACHMENT``.
    """

    REMARK = 1
    STATUS_CHANGE = 2
    FORWARD = 3
    FORWARD_REPLY = 4
    REPLY_TO_FORWARDED_OBJECT = 4
    STREAM_CHANGE = 5
    ASSIGN_CHANGE = 6
    NEW_MANAGER_ASSIGNMENT = 6
    UPDATE_OBJECT_TAG = 7
    FOLLOW_UP = 8
    UPDATE_OBJECT_INTENT = 9
    ATTACHMENT = 10
    UPDATE_OBJECT_ATTACHMENT = 10
    RULE_EXECUTED = 11
    CUSTOM = 12
    UPDATE_OBJECT_PUBLICITY = 13
    DEBUG = 14
    INVALID_EXTENSION_FILE = 15
    INVALID_FILE_SIZE = 16
    DISALLOWED_FILE_UPLOAD = 17
    INACTIVITY_LOGOUT = 18
    PARTICIPANT_CHANGE = 19
    TARGET_STREAM_CHANGE = 20
    CONVERSATION_SUMMARY = 21
    LOG_ERROR = 22
    REDACT_CHILD = 23


class ModuleType(OpenIntEnum):
    """CommBox modules."""

    GENERAL = 0
    CUSTOMER_SERVICE = 1
    FACEBOOK_PAGE_CONNECTOR = 3
    STATIC_CONTENT = 4
    MAILBOX_CONNECTOR = 6
    YOUTUBE_CONNECTOR = 7
    TWITTER_CONNECTOR = 8
    CHAT = 9
    WEB_SYNDICATION_CONNECTOR = 10
    FACEBOOK_MONITOR_CONNECTOR = 11
    WHATSAPP = 13
    SMS = 14
    VOICE = 15
    SSO = 16
    MANAGE_CLIENT_CUSTOMIZATIONS = 17
    APPLE_APPSTORE_REVIEWS = 18
    GOOGLE_PLAY_REVIEWS = 19
    INSTAGRAM_CONNECTOR = 20
    CONTACT_US = 21
    CUSTOMER_SATISFACTIONS = 22
    AUTOMATION_SCRIPT = 23
    INTENTS = 24
    INTERACTIVE_NAVIGATOR = 25
    WEBRTC_VIDEO_CHAT = 26
    WEBRTC_AUDIO_CHAT = 27
    FORMS = 28
    CUSTOMER_VERIFICATION = 29
    DYNAMICS_CRM_CONNECTOR = 31
    CUSTOM_FIELDS = 32
    RIGHTNOW_CRM = 33
    RULES = 34
    EXTERNAL_CONTACTS = 35
    WORKING_HOURS = 36
    CUSTOM = 37
    FACEBOOK_MESSENGER = 38
    MAINTENANCE = 39
    PRIVACY_AND_SECURITY = 40
    AUTO_ASSIGN = 41
    TWO_FACTOR_AUTHENTICATION = 42
    THEMES = 43
    TELEGRAM = 44
    GOOGLE_MY_BUSINESS = 45
    SAP_CRM = 46
    SLA = 47
    PUSH_NOTIFICATIONS = 48
    SYS_AID = 49
    WORKFLOW = 50
    GOOGLE_TRANSLATE = 51
    PRIORITY = 53
    JIRA = 54
    GOOGLE_BUSINESS_MESSAGES = 55
    BI_CUSTOM_REPORTS = 57
    SALESFORCE = 58
    AI_ASSISTANT = 59
    API = 60
    ZENDESK = 61
    TEAMS = 65
    HUBSPOT = 71


class Presence(OpenIntEnum):
    """An agent's presence."""

    ACTIVE = 1
    BUSY = 2
    AWAY = 3


class UserPermission(OpenIntEnum):
    """User permission types (``permissionId``)."""

    UNAUTHORIZED = 0
    NORMAL = 1
    AGENT = 2
    ADMIN = 3
    BOT = 5


class TagType(OpenIntEnum):
    """Tag types."""

    TAG = 1
    GOAL = 2
    MISS = 3
    SUPPORT_TAG = 4
    TOPICS_TAG = 5
    INTENTS = 100
    CUSTOMER_SATISFACTION = 101
    SLA = 102
    CUSTOMER_SATISFACTION_OPEN_ANSWER = 103


# Names the docs write that are not the members' own (read lazily by from_name).
_DOC_NAMES: dict[type[OpenIntEnum], dict[str, int]] = {
    UserPermission: {"Unauthorized user": 0, "Normal - Customer communicating with agent": 1},
    StreamProviderType: {"Microsoft 365": 14},
}
