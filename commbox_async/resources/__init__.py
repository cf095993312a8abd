"""Resource namespaces: thin, typed methods, one per CommBox endpoint."""

from .managers import Managers, ManagersWithRawResponse
from .objects import Objects, ObjectsWithRawResponse

__all__ = ["Managers", "ManagersWithRawResponse", "Objects", "ObjectsWithRawResponse"]
