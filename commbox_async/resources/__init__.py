"""Resource namespaces: thin, typed methods, one per CommBox endpoint, each with its typed
raw-response view (``cb.with_raw_response.<namespace>``)."""

from ._resource import APIResource, Paginator
from .forms import (
    Auth,
    AuthWithRawResponse,
    Automation,
    AutomationWithRawResponse,
    Forms,
    FormsWithRawResponse,
)
from .managers import Managers, ManagersWithRawResponse, Teams, TeamsWithRawResponse
from .messaging import (
    MAX_TEMPLATE_RECIPIENTS,
    Sms,
    SmsWithRawResponse,
    WhatsApp,
    WhatsAppWithRawResponse,
)
from .objects import Objects, ObjectsWithRawResponse
from .streams import TIME_RANGE_CAP, Streams, StreamsWithRawResponse
from .system import Stats, StatsWithRawResponse, System, SystemWithRawResponse
from .tags import Tags, TagsWithRawResponse
from .users import Users, UsersWithRawResponse

__all__ = [
    "APIResource",
    "Auth",
    "AuthWithRawResponse",
    "Automation",
    "AutomationWithRawResponse",
    "Forms",
    "FormsWithRawResponse",
    "MAX_TEMPLATE_RECIPIENTS",
    "Managers",
    "ManagersWithRawResponse",
    "Objects",
    "ObjectsWithRawResponse",
    "Paginator",
    "Sms",
    "SmsWithRawResponse",
    "Stats",
    "StatsWithRawResponse",
    "Streams",
    "StreamsWithRawResponse",
    "System",
    "SystemWithRawResponse",
    "TIME_RANGE_CAP",
    "Tags",
    "TagsWithRawResponse",
    "Teams",
    "TeamsWithRawResponse",
    "Users",
    "UsersWithRawResponse",
    "WhatsApp",
    "WhatsAppWithRawResponse",
]
