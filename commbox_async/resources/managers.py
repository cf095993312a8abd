"""``cb.managers``: agents and admins."""

from __future__ import annotations

from .._response import to_raw_response
from ..models import Manager
from ._resource import APIResource

__all__ = ["Managers", "ManagersWithRawResponse"]


class Managers(APIResource):
    """Agents and admins (managers)."""

    async def get(self, manager_id: int | str) -> Manager:
        """One agent or admin: ``GET /managers/{MANAGER_ID}``."""
        envelope = await self._client._request(
            "GET", "/managers/{manager_id}", path_params={"manager_id": manager_id}
        )
        return self._decode(envelope, Manager)


class ManagersWithRawResponse:
    """``cb.with_raw_response.managers``."""

    def __init__(self, managers: Managers) -> None:
        self.get = to_raw_response(managers.get)
