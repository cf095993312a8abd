"""Resource namespaces: thin, typed methods, one per CommBox endpoint."""

from ._resource import APIResource, Paginator, RawResponseView
from .forms import Auth, Automation, Forms
from .managers import Managers, Teams
from .messaging import MAX_TEMPLATE_RECIPIENTS, Sms, WhatsApp
from .objects import Objects
from .streams import TIME_RANGE_CAP, Streams
from .system import Stats, System
from .tags import Tags
from .users import Users

__all__ = [
    "APIResource",
    "Auth",
    "Automation",
    "Forms",
    "MAX_TEMPLATE_RECIPIENTS",
    "Managers",
    "Objects",
    "Paginator",
    "RawResponseView",
    "Sms",
    "Stats",
    "Streams",
    "System",
    "TIME_RANGE_CAP",
    "Tags",
    "Teams",
    "Users",
    "WhatsApp",
]
