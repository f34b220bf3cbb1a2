"""Storage of alerts and rejected messages in the TOM's database.

Every write is idempotent on (survey, source id), so that Pub/Sub's at-least-once delivery stores each alert
once, and returns only after its transaction commits: the routes acknowledge a message after that, never
before.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from django.db import transaction

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RawMessage:
    """What is kept of a message that could not be decoded."""

    message_id: str
    data: bytes
    attributes: Mapping[str, str]


class AlertStore(Protocol):
    """Where the stream routes put what they pull (the Django store below, or a user's own)."""

    def save_alerts(
        self, alerts: Sequence[Mapping], *, subscription: str = "", message_ids: Sequence[str] = ()
    ) -> int: ...

    def record_rejected(self, messages: Sequence[tuple[RawMessage, str]], *, subscription: str = "") -> None: ...


class DjangoAlertStore:
    """Stores lightened alerts as :class:`~tom_pittgoogle.models.Alert` rows."""

    def save_alerts(
        self, alerts: Sequence[Mapping], *, subscription: str = "", message_ids: Sequence[str] = ()
    ) -> int:
        """Store ``alerts`` in one transaction; return how many were new (the rest were stored before)."""
        from .alert_columns import indexed_columns
        from .models import Alert

        if not alerts:
            return 0
        message_ids = list(message_ids) or [""] * len(alerts)
        rows = [
            Alert(
                survey=alert["survey"],
                source_id=alert["source_id"],
                object_id=alert["object_id"],
                jd=alert.get("jd"),
                ra=alert.get("ra"),
                dec=alert.get("dec"),
                band=str(alert.get("band") or ""),
                mag=alert.get("mag"),
                mag_err=alert.get("mag_err"),
                subscription=subscription,
                message_id=message_id or "",
                alert=dict(alert),
                **indexed_columns(alert),
            )
            for alert, message_id in zip(alerts, message_ids, strict=True)
        ]
        with transaction.atomic():
            before = Alert.objects.filter(
                source_id__in=[row.source_id for row in rows], survey__in={row.survey for row in rows}
            ).count()
            # ON CONFLICT DO NOTHING: a redelivered alert is already there, and that is success.
            Alert.objects.bulk_create(rows, ignore_conflicts=True)
            after = Alert.objects.filter(
                source_id__in=[row.source_id for row in rows], survey__in={row.survey for row in rows}
            ).count()
        new = after - before
        logger.debug("stored %d alerts from %s (%d new)", len(rows), subscription or "a query", new)
        return new

    def record_rejected(self, messages: Sequence[tuple[RawMessage, str]], *, subscription: str = "") -> None:
        from .models import RejectedMessage

        if not messages:
            return
        with transaction.atomic():
            RejectedMessage.objects.bulk_create(
                RejectedMessage(
                    subscription=subscription,
                    message_id=message.message_id,
                    data=message.data,
                    attributes=dict(message.attributes),
                    reason=reason,
                )
                for message, reason in messages
            )
        for message, reason in messages:
            logger.warning("rejected message %s from %s: %s", message.message_id, subscription, reason)
