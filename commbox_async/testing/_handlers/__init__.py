"""The fake's answers to CommBox's API, one module per area, named like the resource module
(``commbox_async/resources/``) that calls them. Each module lists its routes in ``ROUTES``; to
add an endpoint, write its handler there and add a line to that table."""

from __future__ import annotations

from . import forms, managers, messaging, objects, streams, system, tags, users
from ._common import Handler, Multipart, Routes

__all__ = ["ROUTES", "Handler", "Multipart", "Routes"]

#: Every route of the fake's CommBox API.
ROUTES: Routes = (
    *objects.ROUTES,
    *streams.ROUTES,
    *users.ROUTES,
    *managers.ROUTES,
    *system.ROUTES,
    *messaging.ROUTES,
    *tags.ROUTES,
    *forms.ROUTES,
)
