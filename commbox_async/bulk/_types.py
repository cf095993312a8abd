"""What a bulk send takes and reports: messages, their outcomes, the run's report."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from typing import Any, Literal

import attrs

from .._exceptions import ConfigurationError, InvalidArgumentError
from .._verdict import Processed
from ..models import NewChild, NewObject, TemplateMessage
from ..resources._resource import require_encrypted

__all__ = [
    "BulkMessage",
    "BulkReport",
    "FailureKind",
    "Outcome",
    "OutcomeKind",
    "Payload",
    "Rejected",
    "SmsMessage",
]

#: ``sent``: CommBox took it. ``failed``: CommBox certainly did not act on it. ``uncertain``: it
#: may have (never sent again without ``resend_uncertain``). ``pending``: it never left the
#: machine (the run stopped first): the next run sends it.
OutcomeKind = Literal["sent", "failed", "uncertain", "pending"]
#: Why a message failed. ``rejected``: CommBox (or the input) refused this message; it fails
#: the same way again, so it is sent again only with ``retry_failed`` or once its record
#: changed. ``not_sent``: a condition of the run kept it from CommBox (connection, 429/503
#: after every retry, deadline); the next run sends it again by itself.
FailureKind = Literal["rejected", "not_sent"]

#: The JSON a message's fingerprint hashes. Journals keep fingerprints across runs and
#: versions, so this form never changes: a different one would make every key read as changed.
_DIGEST_FORM = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"))


@attrs.frozen(kw_only=True)
class SmsMessage:
    """A text sent with ``POST /sms/sendsms/{ENCRYPTED_STREAM_ID}`` (``Number``, ``Message``)."""

    number: str
    message: str

    def to_wire(self) -> dict[str, Any]:
        return {"Number": self.number, "Message": self.message}


Payload = NewObject | NewChild | SmsMessage | TemplateMessage


@attrs.frozen(kw_only=True)
class BulkMessage:
    """One message of a bulk send.

    ``payload`` is a :class:`NewObject` (a new conversation in ``stream_id``), a
    :class:`NewChild` (a message in the existing conversation ``object_id`` of ``stream_id``),
    an :class:`SmsMessage` or a :class:`TemplateMessage` (``stream_id`` is then the channel's
    encrypted id).
    """

    key: str
    stream_id: int | str
    payload: Payload
    object_id: int | str | None = None

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.key, str) or not self.key:
            raise ConfigurationError("a bulk message needs a non-empty str key")
        given: object = self.payload  # typed as a Payload; a caller may pass anything
        if not isinstance(given, (NewObject, NewChild, SmsMessage, TemplateMessage)):
            expected = "a NewObject, NewChild, SmsMessage or TemplateMessage"
            got = type(given).__name__
            raise InvalidArgumentError(
                f"message {self.key!r}: payload must be {expected}, got {got}",
                param="payload",
                expected=expected,
                got=got,
            )
        if isinstance(self.payload, NewChild) and self.object_id is None:
            raise ConfigurationError(f"message {self.key!r}: a NewChild needs object_id")
        if isinstance(self.payload, (SmsMessage, TemplateMessage)):
            require_encrypted(str(self.stream_id), f"message {self.key!r}: stream_id")

    def digest(self) -> str:
        """A fingerprint of what this message sends (where, and the request body): the
        journal keeps it, so a later run can tell that a key's message changed."""
        form = [
            type(self.payload).__name__,
            str(self.stream_id),
            None if self.object_id is None else str(self.object_id),
            self.payload.to_wire(),
        ]
        return hashlib.sha256(_DIGEST_FORM.encode(form).encode()).hexdigest()[:32]


@attrs.frozen(kw_only=True)
class Rejected:
    """An input record that could not become a message: recorded ``failed`` (``rejected``)
    with ``error`` saying where and why, and never sent."""

    key: str
    error: str


@attrs.frozen(kw_only=True)
class Outcome:
    """What happened to one message.

    ``earlier`` means an earlier run settled it and nothing was sent in this one; ``changed``
    that the message given now differs from the one that earlier run sent (it is not sent
    again: ``error`` says so). ``processed`` is the verdict behind an ``uncertain`` outcome:
    ``YES`` when CommBox answered 2xx but its answer could not be read.
    """

    key: str
    outcome: OutcomeKind
    id: int | None = None
    error: str | None = None
    failure: FailureKind | None = None
    processed: Processed = Processed.NO
    earlier: bool = False
    changed: bool = False
    #: Settled by reconciliation (``cb.bulk.reconcile``): found at CommBox, or not taken.
    reconciled: bool = False
    #: For an ``uncertain`` key that reconciliation could not settle: the ids of the
    #: conversations (or messages) that could each be its send.
    candidates: tuple[int, ...] = ()
    #: The per-recipient result of a WhatsApp send (200 or 206), as CommBox sent it.
    data: dict[str, Any] | None = None

    @property
    def retryable(self) -> bool:
        """True for a failure the next run sends again by itself (``failure="not_sent"``)."""
        return self.outcome == "failed" and self.failure == "not_sent"

    def to_json(self) -> dict[str, Any]:
        """The outcome as a JSON object (one line of ``commbox send-bulk --outcomes``)."""
        row: dict[str, Any] = {"key": self.key, "outcome": self.outcome, "id": self.id}
        if self.error is not None:
            row["error"] = self.error
        if self.failure is not None:
            row["failure"] = self.failure
        if self.outcome == "uncertain":
            row["processed"] = self.processed.name.lower()
        if self.earlier:
            row["earlier"] = True
        if self.changed:
            row["changed"] = True
        if self.reconciled:
            row["reconciled"] = True
        if self.candidates:
            row["candidates"] = list(self.candidates)
        if self.data is not None:
            row["data"] = self.data
        return row


@attrs.define(kw_only=True)
class BulkReport:
    """Counts per outcome, throughput, and (unless ``keep_outcomes=False``) every outcome.

    ``counts`` covers every key the run took from its input, those settled by an earlier run
    included (``earlier`` says how many of them were); ``changed`` counts the keys whose
    message differs from the one an earlier run sent.
    """

    counts: Counter[str] = attrs.field(factory=Counter)
    outcomes: list[Outcome] = attrs.field(factory=list)
    recovered_uncertain: int = 0
    earlier: int = 0
    changed: int = 0
    elapsed: float = 0.0
    stopped_early: bool = False

    @property
    def attempted(self) -> int:
        """Keys settled by this run (not by an earlier one)."""
        return sum(self.counts.values()) - self.earlier

    @property
    def throughput(self) -> float:
        return self.attempted / self.elapsed if self.elapsed > 0 else 0.0
