"""Keeping the tables in bounds: delete stored alerts and rejected messages past their retention, in batches.

Alerts are aged by when this TOM stored them (``stored_at``, indexed), not by the alert's own time: retention
is how long the TOM keeps its copy, and an old alert replayed today is kept as long as any other. An alert of
a Target's object (its name or an alias; an LSST Target ``LSST-<id>`` or ``LSST-SS-<id>`` by that id) is kept
unless ``include_targets``: the Target's page, its observations and a later *Create Targets* may still read it.

Ingesters' backlog samples older than :data:`~tom_pittgoogle.core.heartbeat.BACKLOG_HISTORY` (two days: the
status page plots the night's) go too, whatever their ingester; a stopped ingester's go with its heartbeat row.

Each batch is one short transaction deleting at most ``batch_size`` rows by id, so a large prune never holds
a long lock on a table the ingester is writing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from tom_pittgoogle import conf
from tom_pittgoogle.core.database import guard_database
from tom_pittgoogle.core.heartbeat import BACKLOG_HISTORY
from tom_pittgoogle.core.words import count

logger = logging.getLogger(__name__)

#: Rows deleted per statement (and transaction).
BATCH_SIZE = 10_000
#: Rows deleted per statement by :func:`prune_rejected` called on its own.
PRUNE_BATCH = 1000
#: Target name prefixes of Rubin/LSST objects (tom_pittgoogle.core.targets.target_name).
_LSST_PREFIXES = ("LSST-SS-", "LSST-")


@dataclass
class PruneReport:
    alerts: int = 0
    kept_for_targets: int = 0
    rejected: int = 0
    heartbeats: int = 0
    backlog_samples: int = 0

    def line(self) -> str:
        return (f"deleted {count(self.alerts, 'stored alert')} ({count(self.kept_for_targets, 'older one')} kept "
                f"for Targets), {count(self.rejected, 'rejected message')}, "
                f"{count(self.heartbeats, 'heartbeat')} of stopped ingesters, "
                f"{count(self.backlog_samples, 'backlog sample')} older than {BACKLOG_HISTORY.days} days")


def target_object_ids() -> set[str]:
    """The object ids this TOM's Targets stand for: their names, their aliases, LSST names without the prefix."""
    from tom_targets.models import Target, TargetName

    ids = set(Target.objects.values_list("name", flat=True)) | set(TargetName.objects.values_list("name", flat=True))
    for name in list(ids):
        for prefix in _LSST_PREFIXES:
            if name.startswith(prefix):
                ids.add(name[len(prefix):])
                break
    return ids


def _delete_in_batches(rows, batch_size: int) -> int:
    model = rows.model
    deleted = 0
    while True:
        ids = list(rows.order_by("pk").values_list("pk", flat=True)[:batch_size])
        if not ids:
            return deleted
        with transaction.atomic():
            # This model's rows only: a heartbeat's backlog samples go with it, and are not heartbeats.
            deleted += model.objects.filter(pk__in=ids).delete()[1].get(model._meta.label, 0)


def _cutoff(days: float):
    return timezone.now() - timedelta(days=float(days))


def prune_alerts(older_than_days: float | None = None, *, include_targets: bool = False,
                 batch_size: int = BATCH_SIZE) -> tuple[int, int]:
    """Delete alerts stored more than ``older_than_days`` (default ``PITTGOOGLE_ALERT_RETENTION_DAYS``) ago;
    return (deleted, kept because a Target's object is theirs)."""
    from tom_pittgoogle.models import Alert

    days = conf.get("PITTGOOGLE_ALERT_RETENTION_DAYS") if older_than_days is None else older_than_days
    old = Alert.objects.filter(stored_at__lt=_cutoff(days))
    kept = 0
    if not include_targets:
        protected = target_object_ids()
        kept = old.filter(object_id__in=protected).count() if protected else 0
        old = old.exclude(object_id__in=protected) if protected else old
    deleted = _delete_in_batches(old, batch_size)
    logger.info("pruned %d alerts stored more than %s days ago (%d kept for Targets)", deleted, days, kept)
    return deleted, kept


def prune_rejected(older_than_days: float | None = None, *, batch_size: int = PRUNE_BATCH) -> int:
    """Delete rejected messages received more than ``older_than_days`` ago, in batches; return how many.

    ``older_than_days`` defaults to ``PITTGOOGLE_REJECTED_RETENTION_DAYS``. Each batch is its own short
    transaction, so pruning a large backlog does not hold long locks.
    """
    from tom_pittgoogle.models import RejectedMessage

    days = int(conf.get("PITTGOOGLE_REJECTED_RETENTION_DAYS")) if older_than_days is None else older_than_days
    cutoff = timezone.now() - timedelta(days=float(days))
    deleted = 0
    with guard_database():
        while True:
            ids = list(RejectedMessage.objects.filter(received_at__lt=cutoff).order_by("received_at")
                       .values_list("pk", flat=True)[:batch_size])
            if not ids:
                break
            deleted += RejectedMessage.objects.filter(pk__in=ids).delete()[0]
    logger.info("pruned %d rejected messages older than %s days", deleted, days)
    return deleted


def prune_heartbeats(older_than_days: float, *, batch_size: int = BATCH_SIZE) -> int:
    """Delete the heartbeat rows of ingesters that stopped more than ``older_than_days`` ago."""
    from tom_pittgoogle.models import IngesterHeartbeat

    return _delete_in_batches(IngesterHeartbeat.objects.filter(stopped_at__lt=_cutoff(older_than_days)), batch_size)


def prune_backlog_samples(*, batch_size: int = BATCH_SIZE) -> int:
    """Delete the ingesters' backlog samples older than :data:`~tom_pittgoogle.core.heartbeat.BACKLOG_HISTORY`
    (a stopped ingester's samples go with its heartbeat row, a running one trims its own too)."""
    from tom_pittgoogle.models import BacklogSample

    return _delete_in_batches(BacklogSample.objects.filter(at__lt=timezone.now() - BACKLOG_HISTORY), batch_size)


def prune(older_than_days: float | None = None, *, rejected_older_than_days: float | None = None,
          include_targets: bool = False, batch_size: int = BATCH_SIZE) -> PruneReport:
    """Everything ``manage.py pittgoogle_prune`` deletes, with the settings' retentions as defaults."""
    report = PruneReport()
    report.alerts, report.kept_for_targets = prune_alerts(
        older_than_days, include_targets=include_targets, batch_size=batch_size
    )
    report.rejected = prune_rejected(rejected_older_than_days, batch_size=batch_size)
    days = conf.get("PITTGOOGLE_REJECTED_RETENTION_DAYS") if rejected_older_than_days is None \
        else rejected_older_than_days
    report.heartbeats = prune_heartbeats(days, batch_size=batch_size)
    report.backlog_samples = prune_backlog_samples(batch_size=batch_size)
    return report
