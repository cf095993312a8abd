"""The model-based fault test: random programs of bulk sends, resumes, interrupts and
reconciliations against a hostile CommBox, checked after every step against what the fake
itself processed.

A program (a hypothesis state machine) owns a universe of keyed messages of every kind the
bulk sender takes (new conversations by SMS and email, messages in a conversation, texts
through ``/sms/sendsms``, WhatsApp v2 templates batched 20 a call, some to recipients CommBox
refuses) and one journal. Its steps: a run of ``cb.bulk.send`` over some of the keys (with or
without ``resend_uncertain``, ``retry_failed``, ``stamp``; some records malformed; sometimes
stopped as one Ctrl-C does, or cancelled as two do, at a random request or outcome), an edit
of a message, ``cb.bulk.reconcile`` and ``cb.bulk.send_reconciled``. In front of the fake
sits :class:`Hostile`, which picks each request's fault from the step's seed and the
request itself (so the schedule does not depend on the order concurrent requests arrive
in): dropped before processing, processed then the answer lost, 500 after processing,
502/503/504 before, 429 with every kind of ``Retry-After``, 400, 401, a hang, an answer
slower than the deadline (processed first), an undecodable, truncated, too deep or too large
2xx body, and ids that are no int64.

The invariants, from the fake's own record of what it processed:

1. no key is processed twice, unless a run with ``resend_uncertain`` sent it again while it
   was uncertain (and that run reported it as sent again, not as settled earlier);
2. ``sent`` keys were processed (exactly once but for 1.) and carry an id CommBox gave that
   send; ``failed`` and ``pending`` keys were never processed; an ``uncertain`` key's request
   reached the server (and was processed when its answer was 2xx); a key once uncertain is
   never again failed or pending unless reconciliation found it not taken;
3. every key taken from the input has exactly one outcome, reported once to ``on_outcome``,
   and the journal says the same; a graceful stop interrupts no request mid-way;
4. reconciliation's ``sent`` keys were processed (with the id it found), its "not taken"
   ones never;
5. nothing but the typed errors a run may end with escapes, and one bad answer never stops a
   run.

Both transports: httpx in-process (asyncio and trio) and, over a real socket (uvicorn),
httpx and aiohttp. The default suite runs a bounded, derandomized number of programs; ``nox
-s soak`` (``-m slow``) ten times as many. Each prints how many programs, steps and requests
it ran.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import attrs
import httpx
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule, run_state_machine_as_test

from commbox_async import AsyncCommBox, BulkStoppedError, Hooks, NewChild, NewObject
from commbox_async.bulk import BulkMessage, Journal, Outcome, Rejected, RoundsReport, SmsMessage
from commbox_async.models import TemplateComponent, TemplateMessage, TemplateObjectData
from commbox_async.testing import FakeCommBox
from commbox_async.testing._asgi import InProcessTransport, drop, send_reply
from commbox_async.testing._wire import BASE_URL, Reply, envelope

from .conftest import serve_in_thread

STREAM = 532  # new conversations
CHILD_STREAM = 533  # the conversation messages go into
ENC = "hNyRN_fLUy7rrOrN9jLpipA=="  # /sms/sendsms and WhatsApp
TOKEN = "model-token"
MAX_BYTES = 64 * 1024  # the clients' max_response_bytes: the "huge" fault is past it
STEP_LIMIT = 60.0  # seconds: a step that takes longer has hung
MAX_KEYS = 80  # keys in a program's universe

# -- the hostile server --------------------------------------------------------------------

#: Fault kinds for POSTs (sends) and GETs (reconciliation's lookups), with their weights.
POST_FAULTS: dict[str, int] = {
    "drop_before": 6,
    "lost_after": 6,
    "500": 5,
    "502": 3,
    "503": 4,
    "504": 2,
    "502_after": 2,  # a gateway giving up on a backend that did act: 502 and 504 may follow
    "504_after": 2,  # processing, which is why the verdict table says "maybe" for them
    "429": 5,
    "400": 2,
    "401": 1,
    "hang": 1,
    "slow": 3,
    "late": 2,
    "not_json": 3,
    "truncated": 3,
    "deep": 2,
    "huge": 1,
    "bad_id": 8,
    "bad_shape": 3,
    "bad_result": 4,  # one WhatsApp recipient's result unreadable (a status of "sent!")
}
# A lookup's answer is read, not acted on: the faults that keep it honest, or unreadable (a
# server that lies in its search results is beyond what reconciliation can see through).
GET_FAULTS: dict[str, int] = {
    "drop_before": 3,
    "lost_after": 3,
    "500": 3,
    "502": 2,
    "503": 3,
    "429": 3,
    "late": 1,
    "not_json": 2,
    "truncated": 2,
    "deep": 1,
    "bad_id": 5,  # a listed record's id: the lookup is unreadable, it decides nothing
}
#: Processed before the fault strikes.
PROCESSED_FIRST = frozenset(
    {"lost_after", "500", "slow", "late", "not_json", "truncated", "deep", "huge", "bad_id"}
    | {"bad_shape", "bad_result", "502_after", "504_after"}
)
RETRY_AFTERS = ("0", "0.01", "soon", "Fri, 31 Dec 9999 23:59:59 GMT", "1e400", "9" * 80, "-3")
BAD_IDS = (
    "9" * 5000,  # past the interpreter's int-digits limit: refused while parsing
    "9" * 4000,  # parses, and is no id
    str(2**63),  # one past int64
    str(2**64),
    "-7",
    "0",
    '"18446744073709551616"',  # a string of digits past int64
    '"-7"',
    "3.5",
    "1e30",
    "true",
    "null",
    '"abc"',
)


@attrs.define
class Timing:
    deadline: float
    late: float  # how long a "late" answer waits, after processing (past the deadline)
    hang: float  # how long a "hang" holds the request before dropping it


class Hostile:
    """An ASGI app in front of the fake. Each request's fault is drawn from the step's seed
    and the request itself (method, path, query, body, and how many times that same request
    came before), so concurrent requests get the same faults whatever order they arrive in.
    Unprocessed kinds answer without the fake; processed kinds let the fake act, then spoil
    its reply."""

    def __init__(self, fake: FakeCommBox, timing: Timing) -> None:
        self.fake = fake
        self.timing = timing
        self.seed = 0
        self.rate = 0.0
        self.allow_401 = False
        self.seen: Counter[str] = Counter()
        #: Every request received: (method, path, body, fault kind).
        self.log: list[tuple[str, str, bytes, str | None]] = []
        self.inflight = 0
        self._lock = threading.Lock()

    def configure(self, *, seed: int, rate: float, allow_401: bool = False) -> None:
        self.seed, self.rate, self.allow_401 = seed, rate, allow_401

    def pick(self, ident: str, method: str) -> tuple[str | None, random.Random]:
        with self._lock:
            n = self.seen[ident]
            self.seen[ident] += 1
        digest = hashlib.sha256(ident.encode("utf-8", "surrogatepass")).hexdigest()
        rng = random.Random(f"{self.seed}:{digest}:{n}")
        if rng.random() >= self.rate:
            return None, rng
        table = POST_FAULTS if method == "POST" else GET_FAULTS
        kinds = [k for k in table if k != "401" or self.allow_401]
        return rng.choices(kinds, [table[k] for k in kinds])[0], rng

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.fake(scope, receive, send)
            return
        self.inflight += 1
        try:
            await self._handle(scope, receive, send)
        finally:
            self.inflight -= 1

    async def _handle(self, scope: Any, receive: Any, send: Any) -> None:
        body = await _read_all(receive)
        method = scope["method"]
        path = scope["path"]
        query = scope.get("query_string", b"").decode("latin-1")
        kind, rng = self.pick(f"{method} {path}?{query}\n{body.decode('latin-1')}", method)
        self.log.append((method, path, body, kind))
        if kind in (None, "slow"):
            if kind == "slow":
                await anyio.sleep(0.01)
            await self.fake(scope, _replay(body), send)
            return
        if kind not in PROCESSED_FIRST:
            await self._refuse(kind, rng, send)
            return
        reply = await _capture(self.fake, scope, body)
        if kind == "lost_after":
            await drop(send, processed=True)
            return
        if kind == "late":
            await anyio.sleep(self.timing.late)
        await send_reply(send, _spoil(kind, reply, rng))

    async def _refuse(self, kind: str, rng: random.Random, send: Any) -> None:
        if kind == "drop_before":
            await drop(send, processed=False)
        elif kind == "hang":
            await anyio.sleep(self.timing.hang)
            await drop(send, processed=False)
        elif kind == "429":
            retry_after = rng.choice(RETRY_AFTERS)
            await send_reply(
                send, Reply.error(429, "Too Many Requests", {"retry-after": retry_after})
            )
        else:
            await send_reply(send, Reply.error(int(kind), "refused"))


async def _read_all(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def _replay(body: bytes) -> Any:
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await anyio.sleep_forever()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def _capture(app: Any, scope: Any, body: bytes) -> Reply:
    """What ``app`` answers (it has processed the request by then)."""
    parts: dict[str, Any] = {"status": 500, "headers": [], "body": b""}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            parts["status"] = message["status"]
            parts["headers"] = message.get("headers", [])
        elif message["type"] == "http.response.body":
            parts["body"] += message.get("body", b"")

    await app(scope, _replay(body), send)
    headers = {k.decode(): v.decode() for k, v in parts["headers"]}
    ctype = headers.pop("content-type", "application/json")
    headers.pop("content-length", None)
    return Reply(parts["status"], parts["body"], ctype, headers)


_PLACEHOLDER = "\u0000BAD\u0000"


def _with_bad_ids(data: Any) -> Any:
    if isinstance(data, bool) or data is None:
        return data
    if isinstance(data, int):
        return _PLACEHOLDER
    if isinstance(data, list):
        return [_with_bad_ids(item) for item in data]
    if isinstance(data, dict):
        return {
            k: _PLACEHOLDER if k in ("objectId", "id", "object_id") and v is not None else v
            for k, v in data.items()
        }
    return data


def _spoil(kind: str, reply: Reply, rng: random.Random) -> Reply:
    """The reply to a processed request under ``kind``."""
    if kind in ("slow", "late") or not 200 <= reply.status < 300:
        return reply  # the fake's own refusal (a 400, a 404) goes out as it is
    if kind in ("500", "502_after", "504_after"):
        return Reply.error(int(kind[:3]), "Operation failed")
    if kind == "not_json":
        return Reply(200, b"<html><body>OK</body></html>", "text/html")
    if kind == "truncated":
        return attrs.evolve(reply, payload=reply.payload[: max(1, len(reply.payload) // 2)])
    if kind == "deep":
        depth = rng.choice((300, 2000, 100_000))
        return Reply(200, b'{"status":"200","data":' + b"[" * depth + b"]" * depth + b"}")
    if kind == "huge":
        padding = "x" * (MAX_BYTES + 1024)
        return Reply.json(200, envelope({"objectId": 1, "pad": padding}))
    body = json.loads(reply.payload)
    if kind == "bad_result":
        results = body.get("data")
        if isinstance(results, list) and results and isinstance(results[0], dict):
            item = rng.choice(results)
            item[rng.choice(("status", "object_id"))] = rng.choice(("sent!", [1], {"a": 1}))
        return Reply.json(200, body)
    if kind == "bad_shape":
        body["data"] = rng.choice(("a bare string", [1, 2, 3], {"nothing": True}, 17.5))
        return Reply.json(200, body)
    assert kind == "bad_id"
    bad = rng.choice(BAD_IDS)
    text = json.dumps(dict(body, data=_with_bad_ids(body.get("data"))))
    text = text.replace(json.dumps(_PLACEHOLDER), bad)
    return Reply(200, text.encode())


# -- the messages ----------------------------------------------------------------------------

KINDS = ("sms_object", "email", "child", "sendsms", "whatsapp", "whatsapp_plain", "wa_refused")
WHATSAPP = frozenset({"whatsapp", "whatsapp_plain", "wa_refused"})


@attrs.define
class Spec:
    """One key of the program's universe."""

    key: str
    kind: str
    index: int
    version: int = 0

    @property
    def marker(self) -> str:
        """What identifies this key's requests and what the fake stored for them."""
        if self.kind in WHATSAPP:
            return self.phone
        return f"[{self.key}]"

    @property
    def phone(self) -> str:
        if self.kind == "wa_refused":
            return f"000972{self.index:06d}"  # the fake refuses this recipient (206 / 400)
        return f"972{self.index:09d}"

    def text(self) -> str:
        return f"{self.marker} hello v{self.version}"

    def message(self, child_of: int) -> BulkMessage:
        text = self.text()
        if self.kind == "sms_object":
            payload: Any = NewObject.sms(user_stream_provider_id=self.phone, message=text)
            return BulkMessage(key=self.key, stream_id=STREAM, payload=payload)
        if self.kind == "email":
            payload = NewObject.email(
                subject=f"about {self.key}",
                message=text,
                to=[(f"{self.key}@mail.test", "Customer")],
                user_stream_provider_id="sender@shop.test",
            )
            return BulkMessage(key=self.key, stream_id=STREAM, payload=payload)
        if self.kind == "child":
            payload = NewChild.from_agent(
                user_identity=36574658,
                user_stream_provider_id="customer@mail.test",
                user_stream_provider_type=4,
                message=text,
            )
            return BulkMessage(
                key=self.key, stream_id=CHILD_STREAM, payload=payload, object_id=child_of
            )
        if self.kind == "sendsms":
            return BulkMessage(
                key=self.key, stream_id=ENC, payload=SmsMessage(number=self.phone, message=text)
            )
        object_data = (
            None if self.kind == "whatsapp_plain" else TemplateObjectData(create_child_object=True)
        )
        payload = TemplateMessage.create(
            to=self.phone,
            name="promo",
            language="en",
            components=[TemplateComponent.body(f"v{self.version}")],
            object_data=object_data,
        )
        return BulkMessage(key=self.key, stream_id=ENC, payload=payload)


def processed_ids(fake: FakeCommBox, spec: Spec, child_of: int) -> list[int | None]:
    """One entry per time the fake acted on this key: the id it gave (None: no id)."""
    marker = spec.marker
    if spec.kind in ("sms_object", "email"):
        return [
            oid
            for oid, obj in fake.objects.items()
            if obj.stream == str(STREAM) and marker in str(obj.record.get("message"))
        ]
    if spec.kind == "child":
        children = fake.objects[child_of].children
        return [c["id"] for c in children if marker in str(c.get("message"))]
    if spec.kind == "sendsms":
        return [None for s in fake.sms_sent if marker in str(s.get("message"))]
    return [w.get("object_id") for w in fake.whatsapp_sent if w.get("to") == spec.phone]


# -- the program -----------------------------------------------------------------------------


@attrs.define
class Totals:
    programs: int = 0
    steps: int = 0
    runs: int = 0
    requests: int = 0
    outcomes: Counter[str] = attrs.field(factory=Counter)
    faults: Counter[str] = attrs.field(factory=Counter)
    seconds: Counter[str] = attrs.field(factory=Counter)  # per rule
    rules: Counter[str] = attrs.field(factory=Counter)

    def line(self, name: str, elapsed: float) -> str:
        return (
            f"{name}: {self.programs} programs, {self.steps} steps, {self.runs} runs, "
            f"{self.requests} requests in {elapsed:.1f}s; outcomes {dict(self.outcomes)}; "
            f"faults {sum(self.faults.values())} of {len(self.faults)} kinds; seconds per rule "
            f"{ {k: (self.rules[k], round(v, 1)) for k, v in self.seconds.most_common()} }"
        )


class Server:
    """One uvicorn server for a whole test; each program plugs its own Hostile app in."""

    def __init__(self) -> None:
        self.app: Hostile | None = None
        self.url = ""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert self.app is not None
        await self.app(scope, receive, send)


Interrupt = tuple[str, str, int] | None  # (stop|cancel, request|outcome|commit, the n-th)

SEND_OPTIONS = st.fixed_dictionaries(
    {
        "resend_uncertain": st.booleans(),
        "retry_failed": st.booleans(),
        "stamp": st.booleans(),
        "concurrency": st.sampled_from((1, 3, 8)),
    }
)
INTERRUPTS: st.SearchStrategy[Interrupt] = st.one_of(
    st.none(),
    st.none(),
    st.tuples(
        st.sampled_from(("stop", "cancel")),
        # at the n-th request about to go out, outcome reported, or journal commit (when
        # other workers wait for that commit, or are between it and their first byte)
        st.sampled_from(("request", "outcome", "commit")),
        st.integers(1, 8),
    ),
)
RATES = st.sampled_from((0.0, 0.25, 0.5, 0.9))
#: The client's pace: no throttle; a throttle; a throttle and deadlines so tight that they
#: run out anywhere (in the throttle, the journal's commit, on the wire).
PACES = st.sampled_from(("free", "free", "throttled", "tight"))
DUPLICATE = "duplicate key in the input"
SEEDS = st.integers(0, 2**32 - 1)


#: A bulk send step's arguments.
SEND_STEP = {
    # Which keys go into the run (a bit each), keys new to it (an input file that grew), and
    # in which order.
    "picks": st.integers(0, 2**MAX_KEYS - 1),
    "fresh": st.lists(st.sampled_from(KINDS), max_size=8),
    "order": st.integers(0, 2**32 - 1),
    "malformed": st.sets(st.integers(0, MAX_KEYS - 1), max_size=2),
    "rate": RATES,
    "seed": SEEDS,
    "options": SEND_OPTIONS,
    "interrupt": INTERRUPTS,
    "where": st.integers(0, 7),
    "pace": PACES,
    "repeat": st.one_of(st.none(), st.none(), st.integers(0, MAX_KEYS - 1)),
}


def step(fn: Any) -> Any:
    """Record the step in the program's own log (which, unlike hypothesis's replay, does not
    depend on the timing being the same twice) and put the program into any failure."""

    @functools.wraps(fn)
    def wrapper(self: Program, **kwargs: Any) -> None:
        self.program.append(
            f"state.{fn.__name__}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"
        )
        self.totals.steps += 1
        started = time.monotonic()
        try:
            fn(self, **kwargs)
        except Exception as exc:
            steps = "\n  ".join(self.program)
            raise AssertionError(
                f"{type(exc).__name__}: {exc}\n-- the program ({self.describe()}):\n  {steps}"
            ) from exc
        finally:
            self.totals.seconds[fn.__name__] += time.monotonic() - started
            self.totals.rules[fn.__name__] += 1

    return wrapper


class Program(RuleBasedStateMachine):
    """One program: a universe of keys, a fake, a journal, and steps on them."""

    #: Set by the test that runs the machine.
    totals: Totals
    socket: Server | None = None
    transports: tuple[str, ...] = ("httpx",)
    backends: tuple[str, ...] = ("asyncio",)
    timing = Timing(deadline=0.08, late=0.3, hang=0.3)

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="model-"))
        self.journal = self.dir / "journal.sqlite"
        self.fake = FakeCommBox(token=TOKEN)
        self.hostile = Hostile(self.fake, self.timing)
        if self.socket is not None:
            self.socket.app = self.hostile
        self.child_of = self.fake.add_conversation(CHILD_STREAM, message="the thread")
        self.specs: list[Spec] = []
        self.program: list[str] = []
        #: Keys sent again while uncertain, by a run that said so: each may add one processing.
        self.resent: Counter[str] = Counter()
        self.totals.programs += 1

    def teardown(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- rules -------------------------------------------------------------------------------

    @initialize(kinds=st.lists(st.sampled_from(KINDS), min_size=6, max_size=16))
    @step
    def universe(self, kinds: list[str]) -> None:
        self._add(kinds)

    def _add(self, kinds: list[str]) -> list[Spec]:
        added = []
        for kind in kinds[: MAX_KEYS - len(self.specs)]:
            i = len(self.specs) + len(added)
            added.append(Spec(key=f"k{i:02d}", kind=kind, index=i))
        self.specs.extend(added)
        return added

    @rule(**SEND_STEP)
    @step
    def send(self, **step: Any) -> None:
        self._send_step(**step)

    # The same again, twice: sending (and resuming) is what most steps should do.
    @rule(**SEND_STEP)
    @step
    def resume(self, **step: Any) -> None:
        self._send_step(**step)

    @rule(**SEND_STEP)
    @step
    def rerun(self, **step: Any) -> None:
        self._send_step(**step)

    def _send_step(
        self,
        picks: int,
        fresh: list[str],
        order: int,
        malformed: set[int],
        rate: float,
        seed: int,
        options: dict[str, Any],
        interrupt: Interrupt,
        where: int,
        pace: str,
        repeat: int | None,
    ) -> None:
        specs = [s for i, s in enumerate(self.specs) if picks >> i & 1]
        specs += self._add(fresh)
        specs = specs or self.specs[:1]
        random.Random(order).shuffle(specs)
        if repeat is not None:  # a key given twice, the second time right after the first
            at = repeat % len(specs)
            specs.insert(at + 1, specs[at])
        bad = {self.specs[i % len(self.specs)].key for i in malformed}
        self.hostile.configure(seed=seed, rate=rate, allow_401=True)
        before = self._rows()
        transport, backend = self._where(where)
        result = self._run(backend, self._send(transport, pace, specs, bad, options, interrupt))
        self._check_run(specs, bad, options, before, result)

    @rule(i=st.integers(0, MAX_KEYS - 1))
    @step
    def edit(self, i: int) -> None:
        """The caller changes a key's message: the next run must say so, not skip silently."""
        self.specs[i % len(self.specs)].version += 1

    @rule(rate=RATES, seed=SEEDS, where=st.integers(0, 7))
    @step
    def reconcile(self, rate: float, seed: int, where: int) -> None:
        self.hostile.configure(seed=seed, rate=rate)
        if not self.journal.exists():
            return
        before = self._rows()
        transport, backend = self._where(where)
        report = self._run(backend, self._reconcile(transport))
        self._check_reconcile(report.outcomes)
        self._check_journal(before)

    @rule(rate=RATES, seed=SEEDS, options=SEND_OPTIONS, where=st.integers(0, 7))
    @step
    def rounds(self, rate: float, seed: int, options: dict[str, Any], where: int) -> None:
        self.hostile.configure(seed=seed, rate=rate)
        before = self._rows()
        transport, backend = self._where(where)
        result = self._run(backend, self._rounds(transport, options))
        if options["resend_uncertain"]:
            # A key may be sent again in each round after the one that left it uncertain.
            sends = result.sends if isinstance(result, RoundsReport) else [result.report]
            sent = Counter(o.key for r in sends for o in r.outcomes if not o.earlier)
            for key, n in sent.items():
                was_uncertain = before.get(key, {}).get("outcome") == "uncertain"
                self.resent[key] += n - 1 + was_uncertain
                if not isinstance(result, RoundsReport):  # stopped: the earlier rounds too
                    self.resent[key] += 2
        # Reconciliation may find a key not taken and a later round fail it for good: the
        # transitions are checked step by step in send and reconcile.
        self._check_journal({})

    # -- running -----------------------------------------------------------------------------

    def describe(self) -> str:
        if self.socket is None:
            return f"httpx in-process on {'/'.join(self.backends)}"
        return f"over a socket, {'/'.join(self.transports)}"

    def _where(self, where: int) -> tuple[str, str]:
        transport = self.transports[where % len(self.transports)]
        backends = ("asyncio",) if transport == "aiohttp" else self.backends
        return transport, backends[(where // 2) % len(backends)]

    def _run(self, backend: str, coro: Any) -> Any:
        start = len(self.hostile.log)

        async def main() -> Any:
            return await coro

        outcome: dict[str, Any] = {}

        def thread() -> None:
            try:
                outcome["value"] = anyio.run(lambda: main(), backend=backend)
            except BaseException as exc:
                outcome["error"] = exc

        # In a thread of its own, so that a run that hangs (in a shielded wait no timeout
        # can end) fails the test instead of holding it for ever.
        runner = threading.Thread(target=thread, daemon=True)
        runner.start()
        runner.join(STEP_LIMIT)
        try:
            if runner.is_alive():
                frames = sys._current_frames().get(runner.ident or 0)
                where = "".join(traceback.format_stack(frames)) if frames else "?"
                raise AssertionError(f"the run hung for {STEP_LIMIT}s, in:\n{where}")
            if "error" in outcome:
                raise outcome["error"]
            return outcome["value"]
        finally:
            self._quiesce()
            for _, _, _, kind in self.hostile.log[start:]:
                self.totals.faults[kind or "none"] += 1
            self.totals.requests += len(self.hostile.log) - start

    def _quiesce(self) -> None:
        """Over a socket the server may still be acting on a request the client gave up on."""
        deadline = time.monotonic() + 10
        while self.hostile.inflight and time.monotonic() < deadline:
            time.sleep(0.01)
        assert self.hostile.inflight == 0, "the server never finished a request"

    def _client(
        self, transport: str, hooks: Hooks | None = None, *, pace: str = "free"
    ) -> AsyncCommBox:
        options: dict[str, Any] = {
            "token": TOKEN,
            "rate_limit": {"free": None, "throttled": 2000, "tight": 1000}[pace],
            "burst": 1,
            "deadline": 0.003 if pace == "tight" else self.timing.deadline,
            "max_retries": 2,
            "initial_backoff": 0.001,
            "max_backoff": 0.002,
            "max_retry_after": 0.05,
            "max_response_bytes": MAX_BYTES,
            "hooks": hooks,
        }
        if self.socket is None:
            return AsyncCommBox(
                base_url=BASE_URL, transport=InProcessTransport(self.hostile), **options
            )
        return AsyncCommBox(
            base_url=self.socket.url,
            transport=transport,  # type: ignore[arg-type]
            timeout=httpx.Timeout(5.0),
            **options,
        )

    def _input(
        self, specs: list[Spec], bad: set[str], taken: list[str] | None = None
    ) -> Iterator[BulkMessage | Rejected]:
        """The run's input, read lazily; ``taken`` gets each key as the sender takes it."""
        for s in specs:
            if taken is not None:
                taken.append(s.key)
            if s.key in bad:
                yield Rejected(key=s.key, error=f"input.jsonl:{s.index}: malformed")
            else:
                yield s.message(self.child_of)

    async def _send(
        self,
        transport: str,
        pace: str,
        specs: list[Spec],
        bad: set[str],
        options: dict[str, Any],
        interrupt: Interrupt,
    ) -> RunResult:
        result = RunResult()
        stop = anyio.Event()
        scope = anyio.CancelScope()

        def strike(what: str) -> None:
            assert interrupt is not None
            result.interrupted = interrupt[0]
            if interrupt[0] == "stop":
                stop.set()
            else:
                scope.cancel()

        def on_request(event: Any) -> None:
            result.requests += 1
            if (
                interrupt is not None
                and interrupt[1] == "request"
                and (result.requests == interrupt[2])
            ):
                strike("request")

        def on_outcome(outcome: Outcome) -> None:
            result.reported.append(outcome)
            if (
                interrupt is not None
                and interrupt[1] == "outcome"
                and (len(result.reported) == interrupt[2])
            ):
                strike("outcome")

        def on_commit(commits: int) -> None:
            if interrupt is not None and interrupt[1] == "commit" and commits == interrupt[2]:
                strike("commit")

        journal = WatchedJournal(self.journal, on_commit)
        try:
            async with self._client(transport, Hooks(on_request=on_request), pace=pace) as cb:
                with scope:
                    try:
                        result.report = await cb.bulk.send(
                            self._input(specs, bad, result.taken),
                            journal=journal,
                            on_outcome=on_outcome,
                            stop=stop,
                            **options,
                        )
                    except BulkStoppedError as exc:
                        result.stopped = exc
        finally:
            journal.close()
        return result

    async def _reconcile(self, transport: str) -> Any:
        async with self._client(transport) as cb:
            return await cb.bulk.reconcile(self.journal, settle_after=0, clock_skew=5)

    async def _rounds(self, transport: str, options: dict[str, Any]) -> Any:
        messages = [s.message(self.child_of) for s in self.specs]
        async with self._client(transport) as cb:
            try:
                return await cb.bulk.send_reconciled(
                    lambda: list(messages),
                    journal=self.journal,
                    rounds=2,
                    settle_after=0,
                    clock_skew=5,
                    **options,
                )
            except BulkStoppedError as exc:
                return exc

    # -- checking ----------------------------------------------------------------------------

    def _rows(self) -> dict[str, dict[str, Any]]:
        if not self.journal.exists():
            return {}
        with Journal(self.journal) as journal:
            return {row["key"]: row for row in journal.rows()}

    def _seen(self, spec: Spec) -> bool:
        """Whether a request for this key reached the server."""
        marker = spec.marker.encode()
        return any(marker in body for method, _, body, _ in self.hostile.log if method == "POST")

    def _bad_id_reached(self, spec: Spec) -> bool:
        marker = spec.marker.encode()
        return any(marker in body and kind == "bad_id" for _, _, body, kind in self.hostile.log)

    def _check_journal(self, before: dict[str, dict[str, Any]]) -> None:
        rows = self._rows()
        for spec in self.specs:
            row = rows.get(spec.key)
            done = processed_ids(self.fake, spec, self.child_of)
            times = len(done)
            where = f"{spec.key} ({spec.kind}): journal {row}, processed {times}x {done}"
            # 1. never processed twice, unless sent again while uncertain
            assert times <= 1 + self.resent[spec.key], f"duplicate send: {where}"
            if row is None:
                assert times == 0, f"processed but not in the journal: {where}"
                continue
            state = row["outcome"]
            assert state != "sending", f"left sending: {where}"
            # 2. each state means what it says
            if state == "sent":
                assert times >= 1, f"sent but never processed: {where}"
                if row["id"] is not None:
                    assert row["id"] in done, f"sent with an id CommBox never gave: {where}"
                elif spec.kind in ("sms_object", "email", "child"):
                    raise AssertionError(f"sent without the id CommBox gave: {where}")
                elif spec.kind == "whatsapp" and None not in done:
                    assert self._bad_id_reached(spec), f"sent without its id: {where}"
            elif state in ("failed", "pending"):
                assert times == 0, f"{state} but processed: {where}"
            elif state == "uncertain":
                # In-process, reaching the transport is reaching the server; over a socket
                # the bytes may sit in its buffers, unread, when the client gives up.
                if self.socket is None:
                    assert self._seen(spec), f"uncertain, never reached the server: {where}"
                if row["processed"] == "yes" and spec.kind not in WHATSAPP:
                    # (a WhatsApp batch answered 2xx was acted on, not each of its recipients)
                    assert times >= 1, f"answered 2xx but never processed: {where}"
            # A key once uncertain is never failed or pending again unless reconciliation
            # found it not taken: the next run would send it without resend_uncertain.
            previous = before.get(spec.key)
            if previous is not None and previous["outcome"] == "uncertain":
                assert state in ("uncertain", "sent") or (
                    state == "failed" and row["reconciled"]
                ), f"uncertain became {state}: {where}"

    def _check_run(
        self,
        specs: list[Spec],
        bad: set[str],
        options: dict[str, Any],
        before: dict[str, dict[str, Any]],
        result: RunResult,
    ) -> None:
        self.totals.runs += 1
        for o in result.reported:
            self.totals.outcomes[o.outcome] += 1
        keys = [s.key for s in specs]
        given = Counter(keys)
        duplicates = [o for o in result.reported if o.error == DUPLICATE]
        reported = Counter(o.key for o in result.reported if o.error != DUPLICATE)
        by_key = {o.key: o for o in result.reported if o.error != DUPLICATE}
        # 3. exactly one outcome per key taken, each reported once (a repeated key's second
        # occurrence is reported as a duplicate, and never sent)
        assert all(n == 1 for n in reported.values()), f"reported twice: {reported}"
        assert set(reported) <= set(keys), f"reported keys not in the input: {reported}"
        assert all(given[o.key] > 1 and o.outcome == "failed" for o in duplicates), duplicates
        # Every key the sender took from its input is reported, however the run ended.
        unreported = Counter(result.taken) - Counter(o.key for o in result.reported)
        assert not unreported, f"taken from the input, never reported: {unreported}"
        if result.interrupted is None and result.stopped is None:
            # 5. one bad answer never stops a run: every key has its outcome
            assert result.report is not None
            missing = set(keys) - set(reported)
            assert not missing, f"keys without an outcome: {missing}"
            assert len(duplicates) == sum(n - 1 for n in given.values())
            assert not result.report.stopped_early
            assert sum(result.report.counts.values()) == len(keys)
        if result.stopped is not None:
            assert any(k == "401" for *_, k in self.hostile.log), f"stopped: {result.stopped!r}"
        if result.interrupted != "cancel":
            # A graceful stop (or a 401) cancels only what has not started: nothing is cut off
            # mid-request.
            cut = [
                o for o in result.reported if o.error == "interrupted mid-request" and not o.earlier
            ]
            assert not cut, f"a graceful stop interrupted requests mid-way: {cut}"
        if options["resend_uncertain"]:
            for key, o in by_key.items():
                previous = before.get(key)
                if not o.earlier and previous and previous["outcome"] == "uncertain":
                    self.resent[key] += 1
        rows = self._rows()
        with Journal(self.journal) as journal:
            entries = {key: journal.get(key) for key in given}
        for spec in {s.key: s for s in specs}.values():
            key = spec.key
            o = by_key.get(key)
            row = rows.get(key)
            if o is None:
                # never taken from the input: untouched
                previous = before.get(key)
                assert (row or {}).get("outcome") == (previous or {}).get("outcome"), (
                    f"{key} not reported, but its journal row changed: {previous} -> {row}"
                )
                continue
            assert row is not None, f"{key} reported {o.outcome}, not in the journal"
            assert row["outcome"] == o.outcome, f"{key}: reported {o}, journal {row}"
            if not o.earlier:
                assert row["id"] == o.id, f"{key}: reported {o}, journal {row}"
                entry = entries[key]
                assert entry is not None
                if key in bad:
                    assert o.failure == "rejected" and entry.digest == "", (o, entry)
                elif o.outcome != "pending" and not (o.error or "").startswith("sent again"):
                    # (a pending key is sent by the next run anyway; a key sent again while
                    # uncertain may keep the fingerprint of the attempt that may have been taken)
                    # The journal knows what was sent: the next run can tell a changed message,
                    # reconciliation where to look.
                    digest = spec.message(self.child_of).digest()
                    assert entry.digest == digest, f"{key}: {o}, journal digest {entry.digest}"
        self._check_journal(before)

    def _check_reconcile(self, outcomes: list[Outcome]) -> None:
        specs = {s.key: s for s in self.specs}
        for o in outcomes:
            spec = specs[o.key]
            done = processed_ids(self.fake, spec, self.child_of)
            where = f"{o.key} ({spec.kind}): reconciled {o}, processed {done}"
            # 4. reconciliation tells the truth
            if o.outcome == "sent":
                assert done, f"found, but never processed: {where}"
                assert o.id in done or o.id is None, f"found with the wrong id: {where}"
            elif o.outcome == "failed":
                assert not done, f"not taken, but processed: {where}"


class WatchedJournal(Journal):
    """The program's journal, telling the program of each commit as it is written (where a
    Ctrl-C may strike: other workers wait for that commit, or are between it and their
    request's first byte)."""

    def __init__(self, path: Path, on_commit: Any) -> None:
        super().__init__(path)
        self.on_commit = on_commit
        self.commits = 0

    def write(self, *, sending: Any = (), settled: Any = (), run: int = 0) -> None:
        super().write(sending=sending, settled=settled, run=run)
        self.commits += 1
        self.on_commit(self.commits)


@attrs.define
class RunResult:
    report: Any = None
    reported: list[Outcome] = attrs.field(factory=list)
    taken: list[str] = attrs.field(factory=list)
    requests: int = 0
    interrupted: str | None = None
    stopped: BulkStoppedError | None = None


# -- the tests -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def socket_server() -> Iterator[Server]:
    server = Server()
    with serve_in_thread(server) as url:
        server.url = url
        yield server


def _machine(**attributes: Any) -> type[Program]:
    return type("Program", (Program,), attributes)


def _run(name: str, machine: type[Program], *, examples: int, steps: int) -> None:
    totals = Totals()
    machine.totals = totals
    start = time.monotonic()
    # COMMBOX_MODEL_SHRINK=0 reports the first failing program as it was found, unshrunk (for
    # checking by hand that a broken line turns the test red, without minutes of shrinking).
    shrink = os.environ.get("COMMBOX_MODEL_SHRINK") != "0"
    phases = [p for p in Phase if shrink or p not in (Phase.shrink, Phase.explain)]
    try:
        run_state_machine_as_test(
            machine,
            settings=settings(
                max_examples=examples,
                stateful_step_count=steps,
                deadline=None,
                derandomize=True,
                database=None,
                phases=phases,
                suppress_health_check=list(HealthCheck),
                print_blob=False,
                report_multiple_bugs=shrink,
            ),
        )
    finally:
        print("\n" + totals.line(name, time.monotonic() - start))


def test_model_in_process() -> None:
    machine = _machine(backends=("asyncio", "trio"))
    _run("model, httpx in-process", machine, examples=160, steps=25)


def test_model_over_a_socket(socket_server: Server) -> None:
    machine = _machine(
        socket=socket_server,
        transports=("httpx", "aiohttp"),
        backends=("asyncio", "trio"),
        timing=Timing(deadline=0.25, late=0.4, hang=0.35),
    )
    _run("model, httpx and aiohttp over a socket", machine, examples=30, steps=20)


@pytest.mark.slow
def test_model_in_process_soak() -> None:
    machine = _machine(backends=("asyncio", "trio"))
    _run("model soak, httpx in-process", machine, examples=1600, steps=25)


@pytest.mark.slow
def test_model_over_a_socket_soak(socket_server: Server) -> None:
    machine = _machine(
        socket=socket_server,
        transports=("httpx", "aiohttp"),
        backends=("asyncio", "trio"),
        timing=Timing(deadline=0.25, late=0.4, hang=0.35),
    )
    _run("model soak, httpx and aiohttp over a socket", machine, examples=300, steps=20)
