"""One run of the ingester, as ``pittgoogle_stream`` and the tom-alertstreams stream both run it.

The wiring around :class:`~tom_pittgoogle.core.engine.StreamIngester` that both need: its heartbeat (written at
the start, at each progress report and at the end, with the error it stopped on), the Target maker for the
streams that create Targets (for a user named by their username, whatever the TOM's user model), and the
signal handling: the first SIGINT or SIGTERM stops pulling, stores what is in flight and acknowledges it; a
second one exits at once (status 128 + the signal's number) without acknowledging anything unstored, which
Pub/Sub then delivers again.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from tom_pittgoogle.core.acting import find_user
from tom_pittgoogle.core.engine import DEFAULT_MAX_BACKLOG, MAX_BATCH, IngestStats, Stream, StreamIngester
from tom_pittgoogle.core.heartbeat import Heartbeat

__all__ = ["IngesterRunner", "find_user", "install_signal_handler", "restore_signal_handlers", "stop_on_signal",
           "target_maker"]


def target_maker(user: Any = None) -> Callable[[Mapping[str, Any]], Any]:
    """Create or update the Target of an alert, with its extras, aliases and light curve (as the brokers do),
    giving ``user`` access to it."""
    from tom_pittgoogle.core.targets import create_or_update_target

    def make_target(alert: Mapping[str, Any]) -> Any:
        return create_or_update_target(alert, user=user)

    return make_target


class IngesterRunner:
    """A :class:`StreamIngester` over ``streams`` with its heartbeat and, if a stream creates Targets, its Target
    maker. ``report(stats, line)`` is called with each progress line after the heartbeat is written."""

    def __init__(
        self,
        streams: Sequence[Stream],
        *,
        kind: str,
        progress_interval: float,
        max_backlog: int = DEFAULT_MAX_BACKLOG,
        batch_size: int = MAX_BATCH,
        report: Callable[[IngestStats, str], None] | None = None,
        targets_user: Any = None,
        on_stored: Callable[[Stream, list], None] | None = None,
    ) -> None:
        self.streams = list(streams)
        self.heartbeat = Heartbeat([stream.name for stream in self.streams],
                                   progress_interval=float(progress_interval), kind=kind)
        self.ingester = StreamIngester(
            self.streams,
            max_backlog=int(max_backlog),
            batch_size=int(batch_size),
            on_stored=on_stored,
            target_maker=target_maker(targets_user) if any(s.create_targets for s in self.streams) else None,
            progress=self.heartbeat.reporter(report),
            progress_interval=float(progress_interval),
        )
        self._started = False

    @property
    def stopping(self) -> bool:
        return self.ingester.stopping

    def stop(self) -> None:
        """Ask :meth:`run` to finish cleanly (thread- and signal-safe)."""
        self.ingester.stop()

    def start(self) -> None:
        """Write the heartbeat of a starting run (:meth:`run` does it if it was not done)."""
        if not self._started:
            self._started = True
            self.heartbeat.start(self.ingester)

    def run(
        self,
        *,
        max_results: int | None = None,
        timeout: float | None = None,
        describe_failure: Callable[[Exception], str | Exception] = lambda failure: failure,
    ) -> IngestStats:
        """Listen until a stopping condition; the heartbeat's end records ``describe_failure(error)`` if it
        stopped on one, which is raised as it came."""
        self.start()
        error: str | Exception | None = None
        try:
            return self.ingester.run(max_results=max_results, timeout=timeout)
        except Exception as failure:
            error = describe_failure(failure)
            raise
        finally:
            self.heartbeat.stopped(error)


class Stoppable(Protocol):
    @property
    def stopping(self) -> bool: ...

    def stop(self) -> None: ...


def stop_on_signal(
    running: Callable[[], Iterable[Stoppable]], say: Callable[[str], None]
) -> Callable[[int, Any], None]:
    """A SIGINT/SIGTERM handler: the first signal stops what ``running()`` gives, a second one exits at once."""

    def handle(signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        stoppables = list(running())
        if any(stoppable.stopping for stoppable in stoppables):
            # Exit now: whatever was not acknowledged comes back to the subscription.
            say(f"{name} again: exiting without storing what is in flight")
            os._exit(128 + signum)
        # Stop first, then say so: a second signal may be handled as soon as the line is out (even inside this
        # handler), and must find them stopping.
        for stoppable in stoppables:
            stoppable.stop()
        say(f"{name}: storing what is in flight, then stopping (again to exit at once)")

    return handle


#: The signals that stop an ingester.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def install_signal_handler(handler: Callable[[int, Any], None]) -> dict:
    """Install ``handler`` for SIGINT and SIGTERM (main thread only); return the previous handlers."""
    return {signum: signal.signal(signum, handler) for signum in STOP_SIGNALS}


def restore_signal_handlers(previous: Mapping[int, Any]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)
