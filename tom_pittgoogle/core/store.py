"""Storage of alerts in the TOM's database.

Every write is idempotent on (survey, source id), so that Pub/Sub's at-least-once delivery stores each alert
once, and returns only after its transaction commits: the routes acknowledge a message after that, never
before.

One bad row never stops the others: a batch is stored in one statement inside a savepoint (the fast path);
if the database refuses it, each row is tried in a savepoint of its own, and a row it refuses is recorded as a
:class:`~tom_pittgoogle.models.RejectedMessage` with the database's reason (:mod:`tom_pittgoogle.core.rejected`).
Only a database that is down (:class:`DatabaseUnavailableError`) fails the whole call, and then nothing of it was
stored.

On PostgreSQL (psycopg 3) the fast path is ``COPY`` of the batch into a temporary table, then one
``INSERT ... SELECT ... ON CONFLICT DO NOTHING RETURNING`` that says exactly which rows are new (far cheaper
than ``bulk_create`` plus the query for existing keys); the JSON is written by orjson. Any
refusal there, or a value orjson would write differently from the standard library (NaN, a key that is not
text, an integer over 64 bits), sends the batch to the portable path above, so the outcome and the reasons are
the same on every database.
"""

from __future__ import annotations

import json
import logging
import math
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from django.db import (
    connection,
    models,
    transaction,
)

from tom_pittgoogle.core.alerts.validate import AttributeLimits
from tom_pittgoogle.core.alerts.validate import attributes as bounded_attributes
from tom_pittgoogle.core.database import (
    DatabaseUnavailableError,
    database_is_down,
    guard_database,
    storable,
)
from tom_pittgoogle.core.latency import message_legs
from tom_pittgoogle.core.prune import prune_rejected
from tom_pittgoogle.core.pubsub import describe_error, safe_text
from tom_pittgoogle.core.rejected import MAX_REASON, RawMessage, record_rejected, rejected_max_bytes

#: Importable from here as before: the database's guard, the rejected messages' record and their pruning.
__all__ = [
    "AlertStore", "DatabaseUnavailableError", "DjangoAlertStore", "RawMessage", "SavedBatch", "database_is_down",
    "guard_database", "prune_rejected", "rejected_max_bytes", "save_batch",
]

logger = logging.getLogger(__name__)



@dataclass
class SavedBatch:
    """What became of a batch of alerts: how many rows are new, and which alerts were recorded as rejected.

    ``rejected`` maps an alert's index in the batch to the reason it was recorded with; every other alert is
    in the database (new, or a redelivery of one stored before).
    """

    new: int = 0
    rejected: dict[int, str] = field(default_factory=dict)


class AlertStore(Protocol):
    """Where the stream routes put what they pull (the Django store below, or a user's own).

    A store may also have ``save_messages`` (as :class:`DjangoAlertStore`), which records the rows it cannot
    store instead of failing the batch; :func:`save_batch` uses it when it is there.
    """

    def save_alerts(
        self, alerts: Sequence[Mapping], *, subscription: str = "", message_ids: Sequence[str] = ()
    ) -> int: ...

    def record_rejected(self, messages: Sequence[tuple[RawMessage, str]], *, subscription: str = "") -> None: ...


def save_batch(
    store: AlertStore,
    alerts: Sequence[Mapping],
    messages: Sequence[RawMessage],
    *,
    subscription: str = "",
    keep_message_ids: bool = True,
) -> SavedBatch:
    """Store the lightened ``alerts`` of ``messages`` through ``store``; see :meth:`DjangoAlertStore.save_messages`."""
    save_messages = getattr(store, "save_messages", None)
    if save_messages is not None:
        return save_messages(alerts, messages, subscription=subscription, keep_message_ids=keep_message_ids)
    message_ids = [message.message_id if keep_message_ids else "" for message in messages]
    return SavedBatch(new=store.save_alerts(alerts, subscription=subscription, message_ids=message_ids))


def _reason(prefix: str, error: BaseException) -> str:
    return f"{prefix}: {describe_error(error)}"


class DjangoAlertStore:
    """Stores lightened alerts as :class:`~tom_pittgoogle.models.Alert` rows."""

    #: Whether PostgreSQL batches go through COPY (False: the portable path on every database).
    use_copy: bool = True

    def save_alerts(
        self, alerts: Sequence[Mapping], *, subscription: str = "", message_ids: Sequence[str] = ()
    ) -> int:
        """Store ``alerts`` in one transaction; return how many were new (the rest were stored before).

        An alert the database refuses is recorded as rejected (its JSON as the data), not raised.
        """
        message_ids = list(message_ids) or [""] * len(alerts)
        # No message bytes here: a rejected alert is recorded with its JSON (made only for those).
        messages = [RawMessage(message_id or "", None, {}) for message_id in message_ids]
        return self.save_messages(alerts, messages, subscription=subscription).new

    def save_messages(
        self,
        alerts: Sequence[Mapping],
        messages: Sequence[RawMessage],
        *,
        subscription: str = "",
        keep_message_ids: bool = True,
    ) -> SavedBatch:
        """Store the lightened ``alerts`` of ``messages`` (with their attributes) in one transaction.

        A redelivered alert (same survey, source id and content) is a silent duplicate; one that conflicts with
        the stored alert of its id, or that the database refuses, is recorded as a rejected message and kept
        out of the result. Raises :class:`DatabaseUnavailableError` only if the database is down.
        """
        from tom_pittgoogle.core.alert_columns import indexed_columns
        from tom_pittgoogle.models import Alert

        saved = SavedBatch()
        if not alerts:
            return saved
        attribute_limits = AttributeLimits.from_settings()
        rows: dict[int, Any] = {}
        for index, (alert, message) in enumerate(zip(alerts, messages, strict=True)):
            try:
                rows[index] = Alert(
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
                    message_id=(message.message_id if keep_message_ids else "") or "",
                    attributes=bounded_attributes(message.attributes or {}, attribute_limits),
                    alert=dict(alert),
                    **indexed_columns(alert),
                    **message_legs(alert, message.publish_time),
                )
            except Exception as error:  # noqa: BLE001 - a record that is not an alert's shape
                saved.rejected[index] = _reason("could not be stored", error)
        with guard_database(), transaction.atomic():
            keys = {index: (str(row.survey), str(row.source_id)) for index, row in rows.items()}
            copied = _copy_insert(rows, keys) if rows and self.use_copy else None
            if copied is not None:
                saved.new, compared = copied
                saved.rejected.update(self._conflicts(compared, keys))
            else:
                self._portable_insert(rows, keys, saved)
            if saved.rejected:
                self.record_rejected(
                    [(_with_data(messages[index], alerts[index]), reason)
                     for index, reason in sorted(saved.rejected.items())],
                    subscription=subscription,
                )
        logger.debug("stored %d alerts from %s (%d new, %d rejected)", len(alerts), subscription or "a query",
                     saved.new, len(saved.rejected))
        return saved

    def _portable_insert(self, rows: Mapping[int, Any], keys: Mapping[int, tuple[str, str]],
                         saved: SavedBatch) -> None:
        """Any database: the keys already stored, a bulk insert of the others, then the conflicts."""
        existing = self._existing_keys(keys.values())
        fresh: dict[int, Any] = {}
        repeated: dict[int, Any] = {}  # stored before, or earlier in this batch: compared after the insert
        seen = set(existing)
        for index, row in rows.items():
            (repeated if keys[index] in seen else fresh)[index] = row
            seen.add(keys[index])
        saved.rejected.update(self._insert(fresh))
        saved.new = len(fresh) - sum(index in saved.rejected for index in fresh)
        stored_keys = existing | {keys[index] for index in fresh if index not in saved.rejected}
        compared = {}
        for index, row in repeated.items():
            if keys[index] in stored_keys:
                compared[index] = row
                continue
            refused = self._insert({index: row}, fast=False)  # its first copy in the batch was refused
            saved.rejected.update(refused)
            if not refused:
                saved.new += 1
                stored_keys.add(keys[index])
        saved.rejected.update(self._conflicts(compared, keys))

    @staticmethod
    def _existing_keys(keys: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        from tom_pittgoogle.models import Alert

        # A key the database cannot hold (a NUL, a lone surrogate) is not there; its insert says why.
        keys = {key for key in keys if all(storable(part) for part in key)}
        if not keys:
            return set()
        found = Alert.objects.filter(
            survey__in={survey for survey, _ in keys}, source_id__in={source for _, source in keys}
        ).values_list("survey", "source_id")
        return set(found) & keys

    @staticmethod
    def _insert(rows: Mapping[int, Any], *, fast: bool = True) -> dict[int, str]:
        """Insert ``rows`` (all at once in a savepoint; if refused, one by one); return the refused ones' reasons."""
        from tom_pittgoogle.models import Alert

        if not rows:
            return {}
        if fast:
            try:
                with transaction.atomic():
                    # ON CONFLICT DO NOTHING: a redelivered alert is already there, and that is success.
                    Alert.objects.bulk_create(list(rows.values()), ignore_conflicts=True)
                return {}
            except Exception as error:
                if database_is_down(error):
                    raise
                logger.info("a batch of %d alerts was refused (%s); storing them one by one", len(rows),
                            describe_error(error))
        refused = {}
        for index, row in rows.items():
            try:
                with transaction.atomic():
                    Alert.objects.bulk_create([row], ignore_conflicts=True)
            except Exception as error:
                if database_is_down(error):
                    raise
                refused[index] = _reason("the database refused it", error)
        return refused

    @staticmethod
    def _conflicts(rows: Mapping[int, Any], keys: Mapping[int, tuple[str, str]]) -> dict[int, str]:
        """Reasons for the ``rows`` whose content differs from the stored alert of the same id."""
        from tom_pittgoogle.models import Alert

        if not rows:
            return {}
        wanted = {keys[index] for index in rows}
        stored = {
            (survey, source_id): (alert, message_id, stored_at)
            for survey, source_id, alert, message_id, stored_at in Alert.objects.filter(
                survey__in={survey for survey, _ in wanted}, source_id__in={source for _, source in wanted}
            ).values_list("survey", "source_id", "alert", "message_id", "stored_at")
            if (survey, source_id) in wanted
        }
        conflicts = {}
        for index, row in rows.items():
            if keys[index] not in stored:
                continue  # stored meanwhile by another process and gone again: nothing to compare
            alert, message_id, stored_at = stored[keys[index]]
            differing = _differing_keys(alert, row.alert)
            if differing:
                when = f"{stored_at:%Y-%m-%d %H:%M:%S}"
                conflicts[index] = safe_text(
                    f"conflicts with the stored alert {row.survey} {row.source_id} (stored {when} UTC from message "
                    f"{message_id or 'unknown'}): same id, different {', '.join(differing[:10])}; the stored "
                    "alert is kept",
                    MAX_REASON,
                )
        return conflicts

    def record_rejected(self, messages: Sequence[tuple[RawMessage, str]], *, subscription: str = "") -> None:
        """Record ``messages`` with their reasons (see :func:`tom_pittgoogle.core.rejected.record_rejected`)."""
        record_rejected(messages, subscription=subscription)


def _copy_insert(rows: Mapping[int, Any], keys: Mapping[int, tuple[str, str]]) -> tuple[int, dict[int, Any]] | None:
    """PostgreSQL's fast path: ``rows`` (unsaved ``Alert`` objects) copied into a temporary table and inserted
    from there with ``ON CONFLICT DO NOTHING``, the first copy of a key in the batch first.

    Returns how many rows are new and the rows to compare with the stored alert of their key (stored before,
    or an earlier copy in this batch); None when this path does not serve (another database, a value the portable
    path must judge, or the database refused the batch: then nothing of it is stored).
    """
    if connection.vendor != "postgresql":
        return None
    try:
        values = [_copy_row(row) for row in rows.values()]
    except (TypeError, ValueError, _NotPlainJSON):  # the portable path gives the row its reason
        return None
    from tom_pittgoogle.models import Alert

    fields = _copy_fields()
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    table = quote(Alert._meta.db_table)
    staging = quote(f"tom_pittgoogle_alert_in_{uuid.uuid4().hex[:12]}")
    key_columns = ", ".join(quote(Alert._meta.get_field(name).column) for name in ("survey", "source_id"))
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            if not hasattr(cursor.cursor, "copy"):  # psycopg 2: the portable path
                return None
            cursor.execute(f"CREATE TEMPORARY TABLE {staging} ON COMMIT DROP AS "
                           f"SELECT 0::integer AS batch_order, {columns} FROM {table} WITH NO DATA")
            with connection.wrap_database_errors, cursor.cursor.copy(
                f"COPY {staging} (batch_order, {columns}) FROM STDIN"
            ) as copy:
                for order, row in enumerate(values):
                    copy.write_row((order, *row))
            cursor.execute(
                f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {staging} ORDER BY batch_order "
                f"ON CONFLICT ({key_columns}) DO NOTHING RETURNING {key_columns}"
            )
            inserted = {(str(survey), str(source_id)) for survey, source_id in cursor.fetchall()}
            cursor.execute(f"DROP TABLE {staging}")
    except Exception as error:
        if database_is_down(error):
            raise
        logger.info("a batch of %d alerts was refused (%s); storing them one by one", len(rows),
                    describe_error(error))
        return None
    compared = {}
    for index, row in rows.items():
        if keys[index] in inserted:
            inserted.discard(keys[index])  # its first copy is the one stored; later copies are compared
        else:
            compared[index] = row
    return len(rows) - len(compared), compared


class _NotPlainJSON(ValueError):
    """A value that orjson would write otherwise than the portable path (NaN, infinity)."""


def _copy_fields() -> list[models.Field]:
    from tom_pittgoogle.models import Alert

    return [model_field for model_field in Alert._meta.concrete_fields if not model_field.primary_key]


def _copy_row(row: Any) -> tuple:
    """The column values of an unsaved ``Alert`` as COPY writes them; JSON as orjson text."""
    values = []
    for model_field in _copy_fields():
        value = model_field.pre_save(row, True)  # fills auto_now_add
        if isinstance(model_field, models.JSONField):
            if _has_non_finite(value):
                raise _NotPlainJSON(model_field.name)
            values.append(orjson.dumps(value).decode())
        else:
            values.append(model_field.get_db_prep_save(value, connection))
    return tuple(values)


_isfinite = math.isfinite


def _has_non_finite(value: Any) -> bool:
    """Whether a JSON value holds NaN or an infinity (not JSON: the database refuses what json writes for them)."""
    kind = type(value)
    if kind is float:
        return not _isfinite(value)
    if kind is dict:
        value = value.values()
    elif kind is not list and kind is not tuple:
        return False
    for item in value:
        kind = type(item)
        if kind is float:
            if not _isfinite(item):
                return True
        elif (kind is dict or kind is list or kind is tuple) and _has_non_finite(item):
            return True
    return False


def _with_data(message: RawMessage, alert: Any) -> RawMessage:
    """``message``, or for an alert that came without its message's bytes, the alert's JSON as its data."""
    if message.data is not None:
        return message
    try:
        data = json.dumps(alert, default=repr).encode("utf-8", "backslashreplace")
    except Exception:  # noqa: BLE001 - e.g. a nesting too deep
        data = safe_text(f"an alert of {type(alert).__name__} that cannot be written as JSON").encode()
    return RawMessage(message.message_id, data, message.attributes)


def _same_value(stored: Any, new: Any) -> bool:
    """Equal as JSON: PostgreSQL's jsonb gives 1e300 back as an integer, so numbers compare as numbers."""
    if isinstance(stored, bool) or isinstance(new, bool):
        return stored is new or stored == new and type(stored) is type(new)
    if isinstance(stored, int | float) and isinstance(new, int | float):
        if isinstance(stored, int) and isinstance(new, int):
            return stored == new
        try:
            return float(stored) == float(new) or (math.isnan(float(stored)) and math.isnan(float(new)))
        except OverflowError:
            return False
    if isinstance(stored, Mapping) and isinstance(new, Mapping):
        return stored.keys() == new.keys() and all(_same_value(stored[k], new[k]) for k in stored)
    if isinstance(stored, list | tuple) and isinstance(new, list | tuple):
        return len(stored) == len(new) and all(_same_value(a, b) for a, b in zip(stored, new, strict=True))
    return stored == new


#: Keys of a lightened alert that describe its message, not the alert: a redelivery may differ in them.
_NOT_CONTENT = frozenset({"attributes"})


def _differing_keys(stored: Any, new: Mapping) -> list[str]:
    """The top-level keys whose values differ between the stored alert and a newcomer ([] if the same)."""
    try:
        new = json.loads(json.dumps(new))  # as the database would give it back: tuples are lists
    except (TypeError, ValueError):
        return ["content"]
    if not isinstance(stored, Mapping):
        return ["content"]
    return sorted(str(key) for key in (stored.keys() | new.keys()) - _NOT_CONTENT
                  if key not in stored or key not in new or not _same_value(stored[key], new[key]))
