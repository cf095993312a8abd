"""Testing the FastAPI app with the fixtures commbox-async gives pytest: ``commbox_fake`` (the
fake CommBox) and ``commbox_client`` (a client wired to it). The app builds its client in its
lifespan, so the test hands it a factory returning the fixture's client."""

from __future__ import annotations

from fastapi.testclient import TestClient
from fastapi_app import create_app

from commbox_async import AsyncCommBox
from commbox_async.testing import FakeCommBox


def test_welcome_starts_a_conversation(
    commbox_client: AsyncCommBox, commbox_fake: FakeCommBox
) -> None:
    app = create_app(make_client=lambda: commbox_client)
    with TestClient(app) as http:  # runs the lifespan: the client opens and closes with it
        response = http.post("/customers/972501234567/welcome")
    assert response.status_code == 200
    record = commbox_fake.objects[response.json()["object_id"]].record
    assert record["message"] == "Welcome to the shop!"
    assert commbox_client.is_closed  # the lifespan closed it


def test_a_new_conversation_webhook_adds_a_remark(
    commbox_client: AsyncCommBox, commbox_fake: FakeCommBox
) -> None:
    app = create_app(make_client=lambda: commbox_client)
    with TestClient(app) as http:
        object_id = http.post("/customers/972501234567/welcome").json()["object_id"]
        # What CommBox would POST to the app's callback URLs for that change:
        for subscription, name, body in commbox_fake.webhook_bodies(format="json"):
            answer = http.post(
                f"/commbox/{subscription.lower()}/{name.lower()}",
                content=body,
                headers={"content-type": "application/json"},
            )
            assert answer.status_code == 200
    remarks = [r for r in commbox_fake.requests if r.path == f"/objects/{object_id}/remarks"]
    assert [r.status for r in remarks] == [200]
