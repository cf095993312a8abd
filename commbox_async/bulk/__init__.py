"""Bulk sends that lose nothing and duplicate nothing: ``cb.bulk.send(messages, journal=...)``.

Every message has a caller-chosen unique ``key`` and ends in exactly one outcome:

- ``sent``: CommBox took it (with the new id when CommBox gives one, and for WhatsApp the
  per-recipient result);
- ``failed``: CommBox certainly did not act on it. ``failure`` says why: ``rejected`` (CommBox
  or the input refused this message: it is sent again only with ``retry_failed=True`` or once
  its record changed) or ``not_sent`` (a condition of the run: the next run sends it again);
- ``uncertain``: it may have been taken (read timeout, lost response, 500...). The library never
  sends such a message again on its own; ``resend_uncertain=True`` on a later run does;
- ``pending``: it never left the machine (the run stopped or was interrupted first): the next
  run sends it.

The journal (:class:`Journal`, SQLite from the standard library; or any
:class:`JournalBackend`) records each message as ``sending`` once the throttle lets its request
go and before its first byte may leave, and its outcome after it. Re-running with the same
journal after a crash, Ctrl-C or kill -9 reports what earlier runs settled (``earlier=True``),
treats what was ``sending`` when the process died as ``uncertain``, and sends the rest. The
journal also keeps a fingerprint of each message, so a key whose message changed is reported
(``changed=True``) instead of silently skipped. The input is read lazily with bounded
concurrency, so a generator of a million messages never sits in memory.

Payloads: :class:`~commbox_async.NewObject` (a new conversation),
:class:`~commbox_async.NewChild` (a message in one), :class:`SmsMessage`
(``POST /sms/sendsms``) and :class:`~commbox_async.models.TemplateMessage` (WhatsApp v2, sent
20 recipients per call per stream; each recipient's 200/206 result becomes its message's
outcome).
"""

from ._backend import JournalBackend, JournalEntry, Sending
from ._lookup import STAMP_FIELD, STAMP_SEND_FIELD
from ._reconcile import DEFAULT_CLOCK_SKEW, DEFAULT_SETTLE_AFTER, ReconcileReport
from ._rounds import RoundsReport
from ._send import Bulk
from ._types import (
    BulkMessage,
    BulkReport,
    FailureKind,
    Outcome,
    OutcomeKind,
    Payload,
    Rejected,
    SmsMessage,
)
from .files import CHANNELS, InputRecord, read_messages, scan_keys
from .journal import Journal

__all__ = [
    "CHANNELS",
    "DEFAULT_CLOCK_SKEW",
    "DEFAULT_SETTLE_AFTER",
    "STAMP_FIELD",
    "STAMP_SEND_FIELD",
    "ReconcileReport",
    "RoundsReport",
    "Bulk",
    "BulkMessage",
    "BulkReport",
    "FailureKind",
    "InputRecord",
    "Journal",
    "JournalBackend",
    "JournalEntry",
    "Outcome",
    "OutcomeKind",
    "Payload",
    "Rejected",
    "Sending",
    "SmsMessage",
    "read_messages",
    "scan_keys",
]
