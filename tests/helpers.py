"""Helpers shared by the tests: drive a GAplic until something happens, bounded in time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from fsmio import GAplic


def drive(gaplic: GAplic, until: Callable[[], bool], timeout: float = 5.0) -> None:
    """Run ``gaplic`` one iteration at a time until ``until()`` is true.

    Raises ``AssertionError`` if it is still false after ``timeout`` seconds.  When no
    work is pending it waits for I/O for a millisecond instead of spinning.
    """
    deadline = time.monotonic() + timeout
    while not until():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached within {timeout} s")
        if not gaplic._loop():
            gaplic.loop.run_until_complete(asyncio.sleep(0.001))


def drive_for(gaplic: GAplic, seconds: float) -> None:
    """Run ``gaplic`` for ``seconds`` of real time (to show that something does *not* happen)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not gaplic._loop():
            gaplic.loop.run_until_complete(asyncio.sleep(0.001))
