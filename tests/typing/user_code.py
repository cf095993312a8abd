"""User code the type checker must understand: ``tests/test_typing.py`` runs mypy --strict
over it. Every ``assert_type`` is a claim about the public API's types; every
``type: ignore`` a call that must be refused (with warn_unused_ignores, an ignore that is not
needed is itself an error)."""

from __future__ import annotations

from typing import Any

from typing_extensions import assert_type

from commbox_async import NOT_GIVEN, APIResponse, AsyncCommBox, NewObject, NotGiven
from commbox_async.bulk import BulkReport, ReconcileReport
from commbox_async.models import Manager, ObjectDetails, RecipientResult, SystemStatus, Tag
from commbox_async.resources import Paginator


async def main() -> None:
    async with AsyncCommBox(token="t") as cb:
        view = cb.with_options(timeout=5, deadline=None, max_retries=1, retry_uncertain=False)
        assert_type(view, AsyncCommBox)
        assert_type(NOT_GIVEN, NotGiven)
        cb.with_options(max_retries="3")  # type: ignore[arg-type]
        cb.with_options(deadline="soon")  # type: ignore[arg-type]

        raw = await cb.with_raw_response.objects.get(532, 1, include_children=True)
        assert_type(raw, APIResponse[ObjectDetails])
        assert_type(raw.parsed, ObjectDetails)
        assert_type(raw.http_status, int)
        created = await cb.with_raw_response.objects.create(
            532, NewObject.sms(user_stream_provider_id="972500000000", message="hi")
        )
        assert_type(created, APIResponse[int])
        await cb.with_raw_response.objects.get(532)  # type: ignore[call-arg]
        assert_type(await cb.with_raw_response.managers.list(), APIResponse[list[Manager]])
        assert_type(await cb.with_raw_response.system.status(), APIResponse[SystemStatus])
        assert_type(await cb.with_raw_response.tags.list(), APIResponse[list[Tag]])
        sent = await cb.with_raw_response.whatsapp.send_template("enc", [])
        assert_type(sent, APIResponse[list[RecipientResult]])
        assert_type(await cb.with_raw_response.request("GET", "/x"), APIResponse[Any])
        cb.with_raw_response.nothing  # type: ignore[attr-defined]  # noqa: B018

        assert_type(cb.streams.objects(532, start=0, end=1), Paginator[ObjectDetails])
        assert_type(await cb.bulk.send([]), BulkReport)
        assert_type(await cb.bulk.reconcile("j.sqlite"), ReconcileReport)
