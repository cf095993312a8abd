"""Typed CommBox data: attrs models, open enums, and the one cattrs converter."""

from ._converter import (
    EMPTY,
    JsonObject,
    Model,
    converter,
    parse_date,
    parse_datetime,
    structure,
    unstructure,
)
from ._enums import (
    ModuleType,
    ObjectActivityType,
    ObjectStatusType,
    ObjectType,
    OpenIntEnum,
    Presence,
    StreamProviderType,
    TagType,
    UserPermission,
)
from .objects import (
    Activity,
    ActivityUser,
    CustomIndicator,
    ObjectActivityLog,
    ObjectChild,
    ObjectDetails,
    ObjectRecord,
    Tag,
    Transcript,
)
from .requests import (
    ActivityLogEntry,
    EmailAddress,
    NewChild,
    NewObject,
    NewUser,
    ObjectContent,
    RemarkEntry,
)
from .users import Manager, User, UserIdentity

__all__ = [
    "EMPTY",
    "JsonObject",
    "Model",
    "converter",
    "structure",
    "unstructure",
    "parse_date",
    "parse_datetime",
    # enums
    "OpenIntEnum",
    "ObjectType",
    "ObjectStatusType",
    "StreamProviderType",
    "ObjectActivityType",
    "ModuleType",
    "Presence",
    "UserPermission",
    "TagType",
    # data
    "ObjectRecord",
    "ObjectChild",
    "ObjectDetails",
    "Activity",
    "ActivityUser",
    "ObjectActivityLog",
    "Transcript",
    "Tag",
    "CustomIndicator",
    "User",
    "UserIdentity",
    "Manager",
    # requests
    "NewObject",
    "NewChild",
    "NewUser",
    "ObjectContent",
    "EmailAddress",
    "ActivityLogEntry",
    "RemarkEntry",
]
