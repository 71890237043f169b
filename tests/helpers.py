"""Helpers shared by the tests: drive a GAplic until something happens, bounded in time."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable

import pytest

from fsmio import GAplic

# The ELF binary of Debian's chromium-headless-shell package (/usr/bin/chromium-headless-shell
# is a shell wrapper that does not exec: killing it would orphan the browser).
HEADLESS_SHELL = os.environ.get(
    "CHROMIUM_HEADLESS_SHELL", "/usr/lib/chromium/chromium-headless-shell"
)


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


def headless_shell() -> str:
    """The headless browser the page tests drive through playwright's ``executable_path``.

    It is a required part of those tests: when it is missing the test FAILS (CI installs
    the Debian package in ``.ci/run``); ``CHROMIUM_HEADLESS_SHELL`` may point elsewhere.
    """
    if not os.access(HEADLESS_SHELL, os.X_OK):
        pytest.fail(
            f"no headless browser at {HEADLESS_SHELL}: install Debian's chromium-headless-shell "
            "(apt-get install chromium-headless-shell, as .ci/run does) or set "
            "CHROMIUM_HEADLESS_SHELL to its binary"
        )
    return HEADLESS_SHELL
