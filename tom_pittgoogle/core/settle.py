"""The one path from decoded messages to acknowledged ones, which every route takes.

Each message has been decoded by :func:`~tom_pittgoogle.core.pubsub.unpack_message` into an alert that passed,
an alert filtered out, or a rejection. :func:`settle` stores the alerts that passed and records the rejections
in one transaction, and only once it has committed acknowledges the messages (the filtered-out ones too): every
message ends stored, filtered out or recorded as rejected, and is then acknowledged. A database that is down
raises :class:`~tom_pittgoogle.core.database.DatabaseUnavailableError` before anything is acknowledged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from django.db import transaction

from tom_pittgoogle.core.attach import attach_alerts
from tom_pittgoogle.core.database import guard_database
from tom_pittgoogle.core.latency import stamp_committed
from tom_pittgoogle.core.pubsub import Unpacked
from tom_pittgoogle.core.rejected import RawMessage
from tom_pittgoogle.core.store import AlertStore, SavedBatch, save_batch


def sort_outcomes(
    messages: Iterable[tuple[RawMessage, Unpacked]],
) -> tuple[list[tuple[RawMessage, Unpacked]], list[tuple[RawMessage, str]]]:
    """The messages whose alert passed, and the rejected ones with their reasons (filtered-out ones are neither)."""
    passed, rejected = [], []
    for raw, outcome in messages:
        if outcome.rejected_reason is not None:
            rejected.append((raw, outcome.rejected_reason))
        elif outcome.alert is not None:
            passed.append((raw, outcome))
    return passed, rejected


def settle(
    store: AlertStore,
    passed: Sequence[tuple[RawMessage, Unpacked]],
    rejected: Sequence[tuple[RawMessage, str]],
    *,
    subscription: str,
    keep_message_ids: bool = True,
    with_stored: Callable[[SavedBatch], Any] | None = None,
    acknowledge: Callable[[], Any] | None = None,
    stamp_commit: bool = True,
    target_list: str | None = None,
) -> SavedBatch:
    """Record ``rejected`` and store the lightened alerts of ``passed`` in one transaction, then ``acknowledge()``.

    ``with_stored(saved)`` runs inside the transaction, after the alerts are stored (the ingester makes their
    Targets there). The returned batch says which of ``passed`` the database refused (recorded as rejected).
    The stored alerts that belong to a followed Target (all Targets, or those of ``target_list``, else of
    ``PITTGOOGLE_FOLLOW_TARGET_LIST``) are attached to it in the same transaction
    (:func:`tom_pittgoogle.core.attach.attach_alerts`), before ``with_stored``.
    Inside a caller's own transaction (the ingester's, over several subscriptions) ``acknowledge`` is left to
    the caller, after that transaction commits. Once committed, the stored alerts get their commit time and
    last latency leg (:func:`~tom_pittgoogle.core.latency.stamp_committed`); a caller with its own transaction passes
    ``stamp_commit=False`` and stamps them itself after it commits, with :func:`stored_keys`.
    """
    # A savepoint inside a caller's transaction (a web request's, a test's): a batch that fails here is undone alone,
    # and the caller's transaction goes on (without one, Django marks it for rollback and its next query fails).
    with guard_database(), transaction.atomic():
        if rejected:
            store.record_rejected(list(rejected), subscription=subscription)
        saved = SavedBatch()
        if passed:
            saved = save_batch(
                store,
                [outcome.lightened for _, outcome in passed],  # the store keeps lightened alerts
                [raw for raw, _ in passed],
                subscription=subscription,
                keep_message_ids=keep_message_ids,
            )
            attach_alerts(alerts_stored(passed, saved, lightened=True),
                          route=subscription, target_list=target_list)
        if with_stored is not None:
            with_stored(saved)
    committed_at = datetime.now(UTC)  # the commit just returned: this is when the TOM has the alerts
    if acknowledge is not None:
        acknowledge()
    if stamp_commit:  # else the caller stamps, once its own transaction has committed
        stamp_committed(stored_keys(passed, saved), committed_at)
    return saved


def stored_keys(passed: Sequence[tuple[RawMessage, Unpacked]], saved: SavedBatch) -> list[tuple[str, str]]:
    """The (survey, source id) of the alerts of ``passed`` that are stored (for :func:`stamp_committed`)."""
    keys = []
    for index, (_, outcome) in enumerate(passed):
        if index not in saved.rejected:
            alert = outcome.lightened
            keys.append((str(alert.get("survey")), str(alert.get("source_id"))))
    return keys


def alerts_stored(passed: Sequence[tuple[RawMessage, Unpacked]], saved: SavedBatch, *,
                  lightened: bool = False) -> list[dict]:
    """What the caller asked for (lightened or the full record), or with ``lightened`` the lightened alert, of the
    alerts of ``passed`` that were stored."""
    return [outcome.lightened if lightened else outcome.alert
            for index, (_, outcome) in enumerate(passed) if index not in saved.rejected]
