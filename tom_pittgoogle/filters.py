"""The alert filters the forms offer, as one spec shared by every stream route.

The original compared with ``~`` on a Python bool (``~True == -2``, truthy), so "greater than or equal" let
every alert through, and an alert without ``classtar`` crashed the pull. Here each comparison is explicit and
a missing or null value fails any threshold. ``classtar`` is a ZTF field; Rubin/LSST alerts are filtered on
``reliability`` instead (:class:`AlertFilter` combines both; each form offers the one of its survey).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: Form choice values, kept from the original so that saved queries keep working.
LESS_THAN = "lt"
GREATER_OR_EQUAL = "gt"
CLASSTAR_COMPARISONS = [(LESS_THAN, "less than"), (GREATER_OR_EQUAL, "greater than or equal")]


@dataclass(frozen=True)
class ClasstarFilter:
    """Keep alerts whose star/galaxy score ``classtar`` is below, or at or above, a threshold.

    With no threshold every alert passes.
    """

    threshold: float | None = None
    comparison: str = LESS_THAN

    def __post_init__(self) -> None:
        if self.comparison not in (LESS_THAN, GREATER_OR_EQUAL):
            raise ValueError(f"classtar comparison must be {LESS_THAN!r} or {GREATER_OR_EQUAL!r}")

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, Any]) -> ClasstarFilter:
        threshold = parameters.get("classtar_threshold")
        return cls(
            threshold=None if threshold in (None, "") else float(threshold),
            comparison=parameters.get("classtar_gt_lt") or LESS_THAN,
        )

    def passes(self, alert: Mapping[str, Any]) -> bool:
        if self.threshold is None:
            return True
        value = alert.get("classtar")
        if value is None or value != value:  # missing, null or NaN: unknown, so it cannot pass a threshold
            return False
        if self.comparison == LESS_THAN:
            return value < self.threshold
        return value >= self.threshold

    def __call__(self, alert: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """The original callback contract: the alert if it passes, else None."""
        return alert if self.passes(alert) else None


@dataclass(frozen=True)
class ReliabilityFilter:
    """Keep Rubin/LSST alerts whose diaSource ``reliability`` (probability, 0-1, that the source is real) is at
    or above a threshold. With no threshold every alert passes; a missing or null value fails a threshold."""

    threshold: float | None = None

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, Any]) -> ReliabilityFilter:
        threshold = parameters.get("reliability_threshold")
        return cls(threshold=None if threshold in (None, "") else float(threshold))

    def passes(self, alert: Mapping[str, Any]) -> bool:
        if self.threshold is None:
            return True
        value = alert.get("reliability")
        if value is None or value != value:
            return False
        return value >= self.threshold

    def __call__(self, alert: Mapping[str, Any]) -> Mapping[str, Any] | None:
        return alert if self.passes(alert) else None


@dataclass(frozen=True)
class AlertFilter:
    """The filters a form offers, each on the fields its survey has: classtar is a ZTF field, reliability a
    Rubin/LSST one. A threshold set on a field the alert's survey lacks fails, as a missing value does."""

    classtar: ClasstarFilter
    reliability: ReliabilityFilter

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, Any]) -> AlertFilter:
        return cls(ClasstarFilter.from_parameters(parameters), ReliabilityFilter.from_parameters(parameters))

    def passes(self, alert: Mapping[str, Any]) -> bool:
        return self.classtar.passes(alert) and self.reliability.passes(alert)

    def __call__(self, alert: Mapping[str, Any]) -> Mapping[str, Any] | None:
        return alert if self.passes(alert) else None
