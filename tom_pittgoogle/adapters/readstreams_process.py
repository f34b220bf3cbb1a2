"""readstreams' process: what tom-alertstreams' command does not do for a stream that must end cleanly.

A SIGINT/SIGTERM stops every Pitt-Google stream of the process (a second one exits at once); at interpreter exit
the process waits for the streams that still listen (readstreams' main thread returns as soon as it has started
them); a stream that stopped on an error makes the command exit 1; a stream's error logged where it happened gets
no second traceback from its thread.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
import weakref
from typing import Any

from tom_pittgoogle.core.runner import install_signal_handler, stop_on_signal

logger = logging.getLogger(__name__)

#: The Pitt-Google streams made in this process, which a SIGINT/SIGTERM stops.
LIVE: weakref.WeakSet[Any] = weakref.WeakSet()
_hooks_installed = False
#: One line per Pitt-Google stream of this process that stopped on an error: the exit status is then 1.
FAILURES: list[str] = []


def _say(line: str) -> None:
    logger.warning("%s", line)


#: SIGINT/SIGTERM: stop every Pitt-Google stream of this process; a second one exits at once.
_on_signal = stop_on_signal(lambda: list(LIVE), _say)


def _wait_for_streams() -> None:
    """At interpreter exit, before concurrent.futures refuses new work: wait for the streams that listen.

    readstreams returns from its main thread as soon as it has started the streams' threads. Python then begins
    its shutdown, and the first thing that does is make every ThreadPoolExecutor refuse new work, which the Pub/Sub
    client needs for each message; the streams would go deaf. Hooks registered with ``threading._register_atexit``
    run in reverse order, so this one (registered after concurrent.futures') runs first and keeps the process
    whole until the streams finish. Signals still arrive here (the main thread), and stop them.
    """
    grace_until = time.monotonic() + 2.0  # a thread just started may not have entered listen() yet
    while True:
        waiting = [s for s in list(LIVE) if s.listening or (not s.finished and time.monotonic() < grace_until)]
        if not waiting:
            break
        waiting[0]._finished.wait(timeout=0.5)
    if FAILURES and sys.argv[1:2] == ["readstreams"]:
        # readstreams' main thread returned long ago: only the interpreter's exit is left, and it would exit 0.
        # (Only for the command: a test run or a script that runs streams keeps its own exit status.)
        logger.error("exiting with status 1: %s", "; ".join(FAILURES))
        logging.shutdown()
        os._exit(1)


def _thread_excepthook(args: threading.ExceptHookArgs) -> None:
    """A stream's error was logged in one line where it happened: no thread traceback for it."""
    if getattr(args.exc_value, "_pittgoogle_logged", False):
        return
    _previous_excepthook(args)


_previous_excepthook = threading.excepthook


def install_process_hooks() -> None:
    global _hooks_installed
    # Only the main thread may set signal handlers; readstreams makes the streams there and runs them in threads.
    if _hooks_installed or threading.current_thread() is not threading.main_thread():
        return
    install_signal_handler(_on_signal)
    threading.excepthook = _thread_excepthook
    import concurrent.futures.thread  # noqa: F401  (its exit hook is registered first, so it runs after ours)

    register = getattr(threading, "_register_atexit", None)
    if register is not None:
        register(_wait_for_streams)
    else:  # a Python without the hook: streams run until the interpreter stops them
        logger.warning("this Python cannot keep readstreams' streams alive after its main thread returns")
    _hooks_installed = True
