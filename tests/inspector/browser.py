"""Fixtures of the inspector page's browser tests: an ``fsmio`` program run with
``--inspect 127.0.0.1:0`` in a subprocess, and Debian's chromium-headless-shell driven by
playwright's sync API (it refuses a running asyncio loop in its thread, so the inspected
program is never in the test's process).

The browser is required: ``headless_shell()`` fails the test when it is missing.
Screenshots go to the test's tmp_path, or with ``FSMIO_WRITE_SCREENSHOTS=1`` to
``docs/images/inspector-<name>.png`` (the pictures of docs/inspector.md are made so).
Every wait is bounded: playwright's default timeout, the deadlines below, the kill at
the end.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.helpers import headless_shell

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
DOCS_IMAGES = REPO / "docs" / "images"
WRITE_SCREENSHOTS = os.environ.get("FSMIO_WRITE_SCREENSHOTS") == "1"
#: The line GInspector logs once it listens (its module docstring documents it).
LISTENING = re.compile(r"inspector listening on (http://127\.0\.0\.1:(\d+)/)")
START_TIMEOUT = 20.0
#: Bounds every playwright wait that does not give its own.
WAIT_MS = 10_000


@dataclass
class Inspected:
    """A running ``fsmio`` program with an inspector: its page's ``url`` and process."""

    proc: subprocess.Popen[bytes]
    log: Path
    url: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def inspected(
    tmp_path: Path, *args: str, name: str = "inspected", env: dict[str, str] | None = None
) -> Iterator[Inspected]:
    """Run ``python -m fsmio ARGS`` (which must start an inspector on 127.0.0.1:0) until the
    block ends, with ``env`` added to the environment; its stdout and stderr go to a file,
    read for the ``LISTENING`` line."""
    log = tmp_path / f"{name}.log"
    full_env = {
        **os.environ,
        **(env or {}),
        "PYTHONUNBUFFERED": "1",
        # The control test's gclass lives in tests/inspector/ctl_app.py.
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fsmio", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
            env=full_env,
        )
    running = Inspected(proc, log)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not running.url:
            match = LISTENING.search(running.output())
            if match:
                running.url = match.group(1)
            elif proc.poll() is not None:
                raise AssertionError(f"exited with {proc.returncode}: {running.output()}")
            elif time.monotonic() > deadline:
                raise AssertionError(f"no inspector after {START_TIMEOUT} s: {running.output()}")
            else:
                time.sleep(0.05)
        yield running
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=15)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium for a module's tests (each test gets its own context)."""
    binary = headless_shell()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=binary, headless=True, timeout=30_000)
        try:
            yield launched
        finally:
            launched.close()


class PageErrors(list[str]):
    """Script errors and CSP violations a page reported (a test ends with none)."""


@contextmanager
def open_page(browser: Browser, url: str) -> Iterator[tuple[Page, PageErrors]]:
    """A new tab on ``url`` (1400x850), with every wait bounded by ``WAIT_MS``."""
    context = browser.new_context(viewport={"width": 1400, "height": 850})
    context.set_default_timeout(WAIT_MS)
    errors = PageErrors()
    try:
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(f"script error: {exc}"))
        page.on(
            "console",
            lambda m: (
                errors.append(m.text)
                if m.type == "error" and "Content Security Policy" in m.text
                else None
            ),
        )
        page.goto(url)
        yield page, errors
    finally:
        context.close()


def screenshot(page: Page, name: str, tmp_path: Path) -> Path:
    """A PNG of the page: into docs/images with FSMIO_WRITE_SCREENSHOTS=1, else tmp_path."""
    from playwright.sync_api import expect

    if page.locator("body").get_attribute("data-mode") == "live":
        # The first counters come after a second (until then an en dash): a picture
        # without them is a poor one.
        expect(page.locator("#counters [data-counter=gobjs]")).not_to_have_text("\u2013")
    folder = DOCS_IMAGES if WRITE_SCREENSHOTS else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"inspector-{name}.png"
    page.screenshot(path=str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return path


def feed_exchange(page: Page, messages: list[dict[str, Any]], until: str) -> list[Any]:
    """Open a second feed from the page's origin, send ``messages`` once the server's
    ``tree`` arrived, and return what it got up to the first message of type ``until``
    (at most 5 s): what a hand-written client of the feed would see."""
    script = """
    ([messages, until]) => new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://${location.host}/feed`);
      const got = [];
      const timer = setTimeout(() => { ws.close(); reject(new Error("no " + until + ": " +
        JSON.stringify(got))); }, 5000);
      ws.onmessage = (m) => {
        const data = JSON.parse(m.data);
        got.push(data);
        if (data.type === "tree") for (const msg of messages) ws.send(JSON.stringify(msg));
        if (data.type === until) { clearTimeout(timer); ws.close(); resolve(got); }
      };
    })
    """
    result: list[Any] = page.evaluate(script, [messages, until])
    return result


def trace_transitions(path: Path) -> list[tuple[str, str | None]]:
    """The (event, state) of each transition a JSONL trace file holds, in file order: its
    ``->`` records (a dispatch starts) and ``!`` records (an event not accepted)."""
    found: list[tuple[str, str | None]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            if record.get("phase") in ("->", "!"):
                found.append((record["event"], record.get("state")))
    return found
