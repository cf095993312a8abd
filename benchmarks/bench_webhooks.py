"""Parse 10,000 JSON and 10,000 XML webhook events (the docs' OnNewChild and OnNewActivity
examples, alternating); report events/s, with json.loads and the XML parse alone as the floor."""

from __future__ import annotations

import json
import time

import defusedxml.ElementTree as SafeET
from _common import report

from commbox_async.webhooks import parse_event

N = 10_000

JSON_BODIES = [
    json.dumps(
        {
            "payload": {
                "Activities": {
                    "Activity": {
                        "User": {"Identity": {"Id": "24317951"}, "Id": "23571562"},
                        "Data": {"text": f"Message On Remark {i}"},
                        "Id": str(3377699720762016 + i),
                        "Type": "1",
                        "CreateDate": "09-06-2024 07:32:00",
                    }
                },
                "Id": "3377699720568713",
                "StreamId": "24569",
                "SubStreamId": "0",
            }
        }
    ).encode()
    for i in range(N)
]
XML_BODY = """<Event Subscription="Object" Name="OnNewChild" Brand="commbox">
<Object Id="901730" StreamId="71" SubStreamId="0"><Children>
<Child Id="{i}" CreateDate="26-03-2023 06:36:15" Type="0" StreamProviderId="CAEooBmq@mail.gmail.com"
 StreamProviderType="Mail"><Message>Hello</Message><ManagerId>0</ManagerId><Content>{{"sessionId":133}}</Content>
<User Id="1798715" Phone1="97243434343" Phone2="" UniqueID="" Email="" FirstName="michael" LastName="kantz"
 NumIdentities="1" Locale="" Remarks="" NumObjects="1"><Content>{{}}</Content>
<Identity Id="2191863" StreamProviderId="43434343" StreamProviderType="5" StreamProviderEmail="m@gmail.com"
 UserName="" FirstName="michael" LastName="kantz" ThumbnailUrl=""/></User></Child></Children></Object></Event>"""
XML_BODIES = [XML_BODY.format(i=2099753 + i).encode() for i in range(N)]


def timed(fn) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    assert parse_event(JSON_BODIES[0]).activity.data.text == "Message On Remark 0"  # type: ignore[attr-defined]
    assert parse_event(XML_BODIES[0]).children[0].id == 2099753  # type: ignore[attr-defined]
    rows = []
    for fmt, bodies, floor in (
        ("JSON", JSON_BODIES, lambda: [json.loads(b) for b in JSON_BODIES]),
        ("XML", XML_BODIES, lambda: [SafeET.fromstring(b) for b in XML_BODIES]),
    ):
        t = timed(lambda bodies=bodies: [parse_event(b) for b in bodies])
        t_floor = timed(floor)
        rows.append(
            {
                "format": fmt,
                "events": N,
                "events/s": N / t,
                "parse-only events/s": N / t_floor,
                "share of time in parsing": t_floor / t,
            }
        )
    report("bench_webhooks", rows, {})


if __name__ == "__main__":
    main()
