"""The ws_chat example page in a real headless browser: Debian's chromium-headless-shell
driven by the PyPI ``playwright`` package (``executable_path``; ``playwright install``
is never run, it cannot download here).  Two tabs: what one sends appears in the other.

The browser is a required part of this test: when it is missing the test FAILS (CI
installs the Debian package in ``.ci/run``).  ``CHROMIUM_HEADLESS_SHELL`` may point
elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import headless_shell

from .ws_chat_proc import ws_chat_process


@pytest.mark.slow
def test_two_tabs_chat_in_a_headless_browser(tmp_path: Path) -> None:
    binary = headless_shell()
    from playwright.sync_api import expect, sync_playwright

    with ws_chat_process() as (_, port), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=binary, headless=True, timeout=30_000)
        try:
            context = browser.new_context(viewport={"width": 800, "height": 500})
            context.set_default_timeout(10_000)  # every wait below is bounded by this
            errors: list[str] = []
            url = f"http://127.0.0.1:{port}/"
            one = context.new_page()
            one.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            one.goto(url)
            two = context.new_page()
            two.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            two.goto(url)
            for tab in (one, two):
                expect(tab.locator("#status")).to_have_text("open")
                expect(tab.locator("#go")).to_be_enabled()
            expect(one.locator("#online")).to_have_text("2 online")

            one.fill("#name", "alice")
            one.fill("#text", "hello from tab one <b>not bold</b>")
            one.press("#text", "Enter")
            line = two.locator("#log li", has_text="hello from tab one")
            expect(line).to_have_count(1)
            expect(line.locator(".who")).to_have_text("alice")
            assert line.locator("b").count() == 0  # shown as text, never as HTML
            expect(one.locator("#text")).to_have_value("")

            two.fill("#name", "bob")
            two.fill("#text", "and back from tab two")
            two.click("#go")
            expect(one.locator("#log li", has_text="and back from tab two")).to_have_count(1)

            shot = Path(os.environ.get("WS_CHAT_SHOT_DIR", str(tmp_path))) / "ws_chat.png"
            two.screenshot(path=str(shot))
            assert shot.stat().st_size > 1000
            assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

            two.close()
            expect(one.locator("#online")).to_have_text("1 online")
            assert errors == [], errors  # no CSP violation or script error
        finally:
            browser.close()
