"""Waiting for a command the tests run as a process: with a bound, and a failure that says what did not happen."""

from __future__ import annotations

import subprocess


def finish(process: subprocess.Popen, timeout: float, expectation: str) -> tuple[int, str, str]:
    """Wait at most ``timeout`` s for ``process`` to exit; return its exit status, stdout and stderr.

    If it is still running then, it is killed and the test fails saying ``expectation`` (what should have made it
    exit) with what it wrote, instead of a bare timeout or a hang.
    """
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        raise AssertionError(
            f"still running after {timeout:g} s: {expectation}; killed.\nstdout: {out[-2000:]}\nstderr: {err[-4000:]}"
        ) from None
    return process.returncode, out, err
