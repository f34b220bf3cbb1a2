"""The cost guard: what a search would scan, estimated by BigQuery's free dry run, against what the TOM allows.

When the search would scan more than ``PITTGOOGLE_BIGQUERY_MAX_BYTES`` nothing runs, and
:class:`~tom_pittgoogle.exceptions.QueryTooLargeError` says how much and how to narrow the search. Every job that
runs carries its share of that figure as ``maximum_bytes_billed`` (:func:`share_budget`), so BigQuery itself stops
one the estimate missed and the jobs of one search together are never billed more than the setting.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

from tom_pittgoogle.exceptions import QueryTooLargeError

logger = logging.getLogger(__name__)

NARROWING_ADVICE = (
    "Narrow the search: a time window (start and end time), a cone (ra, dec and radius), "
    "or one table (table name, e.g. the newest)."
)


def format_bytes(count: int) -> str:
    """A byte count in decimal units, as Google bills them (1 GB = 10^9 bytes)."""
    for unit, size in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count} bytes"


def check_cost(queries: Sequence[Any], estimate_bytes: Callable[[str, Any], int], max_bytes: int) -> int:
    """Estimate every query (``estimate_bytes(sql, job_config)``); return the total, or raise
    :class:`QueryTooLargeError` when together they would scan more than ``max_bytes``. Each query that may run is
    given its share of ``max_bytes`` as its ``max_bytes_billed``."""
    estimates = [max(0, int(estimate_bytes(query.sql, query.job_config))) for query in queries]
    total = sum(estimates)
    logger.info("BigQuery estimates %s for %s", format_bytes(total), ", ".join(q.table for q in queries))
    if total > max_bytes:
        raise QueryTooLargeError(
            f"This search would scan {format_bytes(total)} of BigQuery data in {len(queries)} "
            f"table{'s' if len(queries) != 1 else ''} ({', '.join(q.table for q in queries)}), more than the "
            f"{format_bytes(max_bytes)} this TOM allows (PITTGOOGLE_BIGQUERY_MAX_BYTES); nothing was "
            f"run or billed. {NARROWING_ADVICE}",
            estimated_bytes=total,
            max_bytes=max_bytes,
        )
    for query, cap in zip(queries, share_budget(max_bytes, estimates), strict=True):
        query.max_bytes_billed = cap
    return total


def fit_budget(estimates: Mapping[Hashable, int], max_bytes: int) -> tuple[list, list]:
    """Which parts of a search run when together they may scan at most ``max_bytes``: the cheapest first, as many
    as fit (a part estimated over the whole budget never runs); returns the parts that run and those refused."""
    run, refused, spent = [], [], 0
    for part in sorted(estimates, key=lambda name: (estimates[name], str(name))):
        if spent + estimates[part] <= max_bytes:
            run.append(part)
            spent += estimates[part]
        else:
            refused.append(part)
    return run, refused


#: What BigQuery bills at least for each table a query reads (10 MiB): a job capped below it fails.
MIN_BILLED_BYTES = 10 * 1024 * 1024


def share_budget(max_bytes: int, estimates: list[int]) -> list[int]:
    """Each query's ``maximum_bytes_billed``: its estimate (at least BigQuery's 10 MiB minimum) plus a share, in
    proportion, of what those leave of ``max_bytes``. The shares add up to at most ``max_bytes``, so the jobs of one
    search together are billed no more than the cost guard, however many tables it reads."""
    if not estimates:
        return []
    needs = [max(estimate, MIN_BILLED_BYTES) for estimate in estimates]
    total = sum(needs)
    if total <= max_bytes:
        spare = max_bytes - total
        return [need + spare * need // total for need in needs]
    return [max(1, max_bytes * need // total) for need in needs]


def dry_run_config(job_config: Any) -> Any:
    """The job config of the dry run of a query with ``job_config``: free, nothing read, no cached answer."""
    from google.cloud import bigquery

    return bigquery.QueryJobConfig(
        dry_run=True, use_query_cache=False, query_parameters=list(job_config.query_parameters)
    )


def capped(job_config: Any, max_bytes: int, share: int | None = None) -> Any:
    """``job_config`` with BigQuery's own cap on the bytes billed: the query's ``share`` of the cost guard
    (:func:`check_cost` sets it), or the whole ``max_bytes`` for a query run on its own."""
    job_config.maximum_bytes_billed = max_bytes if share is None else share
    return job_config
