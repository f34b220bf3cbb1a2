"""Messages that could not be stored as alerts: recorded with their reason (and their first bytes), for the
operator, so that the message can be acknowledged and nothing is lost without a trace.

Only the first ``PITTGOOGLE_REJECTED_MAX_BYTES`` bytes are kept, with the whole message's size and SHA-256;
:func:`tom_pittgoogle.core.prune.prune_rejected` deletes them after ``PITTGOOGLE_REJECTED_RETENTION_DAYS``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from django.db import transaction

from tom_pittgoogle import conf
from tom_pittgoogle.core.alerts.validate import AttributeLimits
from tom_pittgoogle.core.alerts.validate import attributes as bounded_attributes
from tom_pittgoogle.core.database import guard_database
from tom_pittgoogle.core.pubsub import safe_text

logger = logging.getLogger(__name__)

#: Longest reason kept for a rejected message (characters).
MAX_REASON = 2000


@dataclass(frozen=True)
class RawMessage:
    """What is kept of a message that could not be stored: its id, bytes and attributes."""

    message_id: str
    data: bytes | None  # None: an alert given without its message (``save_alerts``)
    attributes: Mapping[str, str]


def record_rejected(messages: Sequence[tuple[RawMessage, str]], *, subscription: str = "") -> None:
    """Record ``messages`` with their reasons (each capped to ``PITTGOOGLE_REJECTED_MAX_BYTES`` bytes)."""
    from tom_pittgoogle.models import RejectedMessage

    if not messages:
        return
    max_bytes = rejected_max_bytes()
    attribute_limits = AttributeLimits.from_settings()
    with guard_database(), transaction.atomic():
        RejectedMessage.objects.bulk_create(
            RejectedMessage(
                subscription=subscription[:255],
                message_id=safe_text(message.message_id, 128),
                data=bytes(message.data[:max_bytes]),
                size=len(message.data),
                sha256=hashlib.sha256(message.data).hexdigest(),
                attributes=bounded_attributes(message.attributes or {}, attribute_limits),
                reason=safe_text(reason, MAX_REASON),
            )
            for message, reason in messages
        )
    for message, reason in messages:
        logger.warning("rejected message %s from %s: %s", safe_text(message.message_id, 128), subscription,
                       safe_text(reason, MAX_REASON))


def rejected_max_bytes() -> int:
    """``PITTGOOGLE_REJECTED_MAX_BYTES``: the most bytes of a rejected message that are kept (the first ones)."""
    return max(0, int(conf.get("PITTGOOGLE_REJECTED_MAX_BYTES")))
