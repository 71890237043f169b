"""The inspector page end to end in a real headless browser (Debian's
chromium-headless-shell driven by playwright): a real ``fsmio run ... --inspect`` or
``fsmio inspect TRACE`` in a subprocess, real sockets, assertions on the page's DOM (the
contract documented at the top of ``src/fsmio/inspector/static/inspector.js``).

A missing browser fails these tests (see tests/helpers.headless_shell).
"""

from __future__ import annotations

import json
import re
import socket
import time
from contextlib import ExitStack
from pathlib import Path

import pytest

from .browser import (
    EXAMPLES,
    browser,
    feed_exchange,
    inspected,
    open_page,
    screenshot,
    trace_transitions,
)

__all__ = ["browser"]  # the fixture, imported so that pytest finds it here

pytestmark = pytest.mark.slow

ADDRESS = "127.0.0.1:0"
TOKEN = "s3cret-token-for-the-test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def echo_server_args(port: int) -> list[str]:
    return ["run", str(EXAMPLES / "echo_server.toml"), "--set", f"echo.port={port}"]


def echo_round_trip(conn: socket.socket, data: bytes) -> None:
    conn.sendall(data)
    got = b""
    conn.settimeout(5)
    while len(got) < len(data):
        chunk = conn.recv(65536)
        assert chunk, "the echo server closed the connection"
        got += chunk
    assert got == data


def test_echo_server_tree_appears(browser, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    port = free_port()
    with (
        inspected(tmp_path, *echo_server_args(port), "--inspect", ADDRESS) as app,
        open_page(browser, app.url) as (page, errors),
    ):
        expect(page.locator("#status")).to_have_text("open")
        expect(page.locator("#mode")).to_have_text("read-only")
        echo = page.locator("#tree li.gobj[data-name='echo']")
        expect(echo).to_have_count(1)
        expect(echo).to_have_attribute("data-gclass", "Echo")
        expect(echo).to_have_attribute("data-state", "ST_ECHOING")
        listener = echo.locator("li.gobj[data-gclass='GServerSock']")
        expect(listener).to_have_count(1)
        expect(listener.locator(":scope > .row > .state")).not_to_be_empty()
        expect(page.locator("#counters [data-counter=gobjs]")).to_have_text(re.compile(r"^\d+$"))

        # The tree filter keeps the matches and the path to them.
        page.fill("#filter-tree", "GServerSock")
        expect(listener).to_be_visible()
        expect(echo.locator(":scope > .row")).to_be_visible()
        page.fill("#filter-tree", "no-such-gobj")
        expect(echo).to_be_hidden()
        page.fill("#filter-tree", "")
        expect(echo).to_be_visible()
        assert errors == [], errors


def test_the_echo_inspect_example(browser, tmp_path: Path) -> None:
    """The demo of docs/inspector.md: an echo server and an endless client."""
    from playwright.sync_api import expect

    args = ["run", str(EXAMPLES / "echo_inspect.toml"), "--set", "pinger.interval=0.2"]
    with (
        inspected(tmp_path, *args, "--inspect", ADDRESS) as app,
        open_page(browser, app.url) as (page, errors),
    ):
        pinger = page.locator("#tree li.gobj[data-name='pinger']")
        connex = pinger.locator("li.gobj[data-gclass='GConnex']")
        expect(connex).to_have_attribute("data-state", "ST_CONNECTED")
        connex.locator(":scope > .row").click()
        expect(page.locator("#diagram svg g.state.current")).to_have_attribute(
            "data-state", "ST_CONNECTED"
        )
        # The server side of the client's connection is in the tree too.
        server_socks = page.locator("#tree li.gobj[data-name='echo'] li.gobj[data-gclass='GSock']")
        expect(server_socks).not_to_have_count(0)
        expect(page.locator("#events tr.event[data-event='EV_RX_DATA']")).not_to_have_count(0)
        expect(page.locator("#counters [data-counter=connections]")).not_to_have_text("0")
        screenshot(page, "overview", tmp_path)
        assert errors == [], errors


def test_a_connection_adds_a_child_within_a_second_and_its_end_removes_it(
    browser, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    port = free_port()
    with (
        inspected(tmp_path, *echo_server_args(port), "--inspect", ADDRESS) as app,
        open_page(browser, app.url) as (page, errors),
    ):
        listener = page.locator("#tree li.gobj[data-gclass='GServerSock']")
        expect(listener).to_have_count(1)
        socks = listener.locator("li.gobj[data-gclass='GSock']")
        expect(socks).to_have_count(0)

        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            expect(socks).to_have_count(1, timeout=1000)  # the bound: one second
            echo_round_trip(conn, b"hello inspector")
            expect(page.locator("#counters [data-counter=connections]")).to_have_text("1")
            # Selecting it shows its stats (bytes and messages) and its FSM diagram.
            socks.locator(":scope > .row").click()
            expect(page.locator("#detail")).to_be_visible()
            expect(page.locator("#stats tbody tr[data-key='rxed_bytes']")).to_have_count(1)
            expect(page.locator("#config tbody tr[data-key]")).not_to_have_count(0)
            expect(page.locator("#diagram svg g.state.current")).to_have_attribute(
                "data-state", "ST_CONNECTED"
            )
            # Its subscriptions are links: the Echo gobj gets its events.
            echo_id = page.locator("#tree li.gobj[data-name='echo']").get_attribute("data-id")
            page.locator(f"#subscriptions a[data-id='{echo_id}']").first.click()
            expect(page.locator("#detail")).to_have_attribute("data-id", echo_id or "")
            socks.locator(":scope > .row").click()
        expect(socks).to_have_count(0, timeout=1000)
        expect(page.locator("#detail")).to_be_hidden()  # the selected gobj is gone
        assert errors == [], errors


def test_the_highlight_moves_when_a_gconnex_connects(browser, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    port = free_port()
    args = [
        "run",
        str(EXAMPLES / "echo_client.toml"),
        "--set",
        f"client.port={port}",
        "--set",
        "client.timeout=100",
        "--set",
        "client.timeout_between_connections=0.3",
    ]
    with (
        inspected(tmp_path, *args, "--inspect", ADDRESS) as app,
        open_page(browser, app.url) as (page, errors),
    ):
        connex = page.locator("#tree li.gobj[data-gclass='GConnex']")
        expect(connex).to_have_count(1)
        connex.locator(":scope > .row").click()
        current = page.locator("#diagram svg g.state.current")
        not_connected = re.compile(r"^(ST_DISCONNECTED|ST_WAIT_CONNECTED)$")
        expect(current).to_have_attribute("data-state", not_connected)
        connex_id = connex.get_attribute("data-id")

        # The server starts now: the next attempt connects.
        with socket.create_server(("127.0.0.1", port)) as server:
            expect(current).to_have_attribute("data-state", "ST_CONNECTED")
            expect(connex).to_have_attribute("data-state", "ST_CONNECTED")
            expect(page.locator("#detail-state")).to_have_text("ST_CONNECTED")
            # The transition is in the stream: ST_WAIT_CONNECTED -> ST_CONNECTED.
            transition = page.locator(
                f"#events tr.event[data-dst='{connex_id}'][data-state='ST_WAIT_CONNECTED']"
                "[data-next='ST_CONNECTED']"
            )
            expect(transition).to_have_count(1)
            expect(transition.locator("td.transition")).to_have_text(
                "ST_WAIT_CONNECTED → ST_CONNECTED"
            )

            # Time travel: pause; the slider steps over the retained history (oldest
            # first, the table shows it up to the slider).  Just before the connection the
            # GConnex is shown waiting, at it connected, at the start not connected.
            page.click("#pause")
            expect(page.locator("#pause")).to_have_text("Live")
            scrub = page.locator("#scrub")
            expect(scrub).to_be_enabled()
            rows = page.locator("#events tr.event")
            last = int(scrub.get_attribute("max") or "0")
            expect(rows).to_have_count(last + 1)  # the whole history: far less than 500
            at = rows.evaluate_all(
                """(rows, id) => rows.findIndex((r) => r.dataset.dst === id
                    && r.dataset.state === 'ST_WAIT_CONNECTED'
                    && r.dataset.next === 'ST_CONNECTED')""",
                connex_id,
            )
            assert at > 0, at

            def scrub_to(index: int) -> None:
                scrub.evaluate(
                    "(s, i) => { s.value = String(i); s.dispatchEvent(new Event('input')); }", index
                )
                expect(rows).to_have_count(index + 1)

            scrub_to(at - 1)
            expect(connex).to_have_attribute("data-state", "ST_WAIT_CONNECTED")
            expect(current).to_have_attribute("data-state", "ST_WAIT_CONNECTED")
            screenshot(page, "paused", tmp_path)
            scrub_to(at)
            expect(connex).to_have_attribute("data-state", "ST_CONNECTED")
            expect(current).to_have_attribute("data-state", "ST_CONNECTED")
            scrub_to(0)
            expect(connex).to_have_attribute("data-state", not_connected)
            expect(current).to_have_attribute("data-state", not_connected)
            # Play runs the history forward to where the pause was.
            page.select_option("#speed", "100")
            page.click("#play")
            expect(rows).to_have_count(last + 1)
            expect(connex).to_have_attribute("data-state", "ST_CONNECTED")
            page.click("#pause")
            expect(connex).to_have_attribute("data-state", "ST_CONNECTED")
            expect(current).to_have_attribute("data-state", "ST_CONNECTED")
            server.settimeout(5)
            accepted, _ = server.accept()
            accepted.close()
        assert errors == [], errors


def test_an_event_filter_hides_the_other_events(browser, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    port = free_port()
    with (
        inspected(tmp_path, *echo_server_args(port), "--inspect", ADDRESS) as app,
        open_page(browser, app.url) as (page, errors),
    ):
        expect(page.locator("#status")).to_have_text("open")
        rows = page.locator("#events tr.event")
        rx = page.locator("#events tr.event[data-event='EV_RX_DATA']")
        others = page.locator("#events tr.event:not([data-event='EV_RX_DATA'])")
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            echo_round_trip(conn, b"one")
            expect(rx).not_to_have_count(0)
            expect(others).not_to_have_count(0)  # EV_CONNECTED, EV_SEND_DATA, ...
            # Clicking an event selects its destination.
            first = rows.first
            first.click()
            expect(page.locator("#detail")).to_have_attribute(
                "data-id", first.get_attribute("data-dst") or ""
            )

            page.fill("#filter-event", "EV_RX_DATA")
            page.press("#filter-event", "Enter")
            expect(others).to_have_count(0)
            before = rx.count()
            for n in range(3):
                echo_round_trip(conn, f"after the filter {n}".encode())
            expect(rx).to_have_count(before + 3)
            # Long enough for the dropped events to have been sent had they passed.
            page.wait_for_timeout(500)
            expect(others).to_have_count(0)
            assert rows.count() == rx.count()
            screenshot(page, "filter", tmp_path)

            page.fill("#filter-event", "")
            page.press("#filter-event", "Enter")
            echo_round_trip(conn, b"and without it")
            expect(others).not_to_have_count(0)
        assert errors == [], errors


def ctl_app(tmp_path: Path, out: str) -> Path:
    config = tmp_path / "ctl.toml"
    config.write_text(
        "[gaplic]\n"
        'name = "ctl"\n'
        "[[gobj]]\n"
        'name = "recorder"\n'
        'gclass = "tests.inspector.ctl_app:Recorder"\n'
        "unique = true\n"
        "[gobj.config]\n"
        f"out = {json.dumps(out)}\n",
        encoding="utf-8",
    )
    return config


def test_control_needs_the_token(browser, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    out = tmp_path / "pings.jsonl"  # the program runs in tmp_path
    args = ["run", str(ctl_app(tmp_path, out.name)), "--inspect", ADDRESS]
    # The token from the environment: a command line is visible to every local user.
    with inspected(tmp_path, *args, env={"FSMIO_INSPECT_TOKEN": TOKEN}) as app:
        recorder = "#tree li.gobj[data-name='recorder']"

        # Without the token: read-only, no control shown, and the server refuses it.
        with open_page(browser, app.url) as (page, errors):
            expect(page.locator(recorder)).to_have_attribute("data-state", "ST_IDLE")
            expect(page.locator("#mode")).to_have_text("read-only")
            page.click(f"{recorder} > .row")
            expect(page.locator("#detail")).to_be_visible()
            expect(page.locator("#send-form")).to_be_hidden()
            expect(page.locator("#trace-toggle")).to_be_hidden()
            rid = int(page.locator(recorder).get_attribute("data-id") or "-1")
            got = feed_exchange(
                page,
                [{"type": "send_event", "id": rid, "event": "EV_PING", "kw": {"text": "no"}}],
                until="result",
            )
            assert got[-1]["ok"] is False, got[-1]
            got = feed_exchange(page, [{"type": "auth", "token": "wrong"}], until="auth")
            assert got[-1] == {"type": "auth", "ok": False}
            assert not out.exists()
            assert errors == [], errors

        # A wrong token in the URL: still read-only.
        with open_page(browser, app.url + "#token=wrong") as (page, errors):
            expect(page.locator("#tree li.gobj")).not_to_have_count(0)
            expect(page.locator("#mode")).to_have_text("read-only")
            expect(page.locator("#send-result")).to_have_attribute("data-ok", "false")

        # With it: the page sends EV_PING with a JSON kw, and the gobj gets it.
        with open_page(browser, app.url + "#token=" + TOKEN) as (page, errors):
            expect(page.locator("#mode")).to_have_text("control")
            page.click(f"{recorder} > .row")
            expect(page.locator("#send-form")).to_be_visible()
            expect(page.locator("#send-event option")).to_have_text(["EV_PING"])
            page.fill("#send-kw", '{"text": "hello <b>from</b> the page"}')
            page.click("#send-button")
            expect(page.locator("#send-result")).to_have_attribute("data-ok", "true")
            expect(page.locator(recorder)).to_have_attribute("data-state", "ST_PINGED")
            expect(page.locator("#diagram svg g.state.current")).to_have_attribute(
                "data-state", "ST_PINGED"
            )
            ping = page.locator("#events tr.event[data-event='EV_PING']")
            expect(ping).to_have_count(1)
            # Text from the network is shown as text: the markup is not parsed.
            expect(ping.locator("td.ret")).to_have_text("'ping 1: hello <b>from</b> the page'")
            assert page.locator("#events b, #detail b").count() == 0
            lines = out.read_text(encoding="utf-8").splitlines()
            assert [json.loads(line) for line in lines] == [
                {"text": "hello <b>from</b> the page", "n": 1}
            ]

            # trace_mach of the gobj, on and off.
            toggle = page.locator("#trace-toggle")
            expect(toggle).not_to_be_checked()
            toggle.check()
            expect(page.locator("#send-result")).to_have_attribute("data-ok", "true")
            expect(page.locator("#send-result")).to_contain_text("trace_mach")
            # The next detail (once a second) shows the gobj's parameter switched on.
            trace_mach = page.locator("#config tr[data-key='trace_mach'] td")
            expect(trace_mach).to_have_text(re.compile(r"^(1|true)$"))
            expect(toggle).to_be_checked()
            screenshot(page, "control", tmp_path)
            toggle.uncheck()
            expect(page.locator("#send-result")).to_have_attribute("data-ok", "true")
            expect(trace_mach).to_have_text(re.compile(r"^(0|false)$"))

            # A kw that is not a JSON object is refused in the page, before sending.
            page.fill("#send-kw", "[1, 2]")
            page.click("#send-button")
            expect(page.locator("#send-result")).to_have_attribute("data-ok", "false")
            expect(page.locator("#send-result")).to_contain_text("JSON object")
            assert len(out.read_text(encoding="utf-8").splitlines()) == 1
            assert errors == [], errors


def test_offline_replay_shows_the_trace_file(browser, tmp_path: Path) -> None:
    import subprocess
    import sys

    from playwright.sync_api import expect

    trace = tmp_path / "trace.jsonl"
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "fsmio",
            "run",
            str(EXAMPLES / "timer_demo.toml"),
            "--set",
            "counter.ticks=4",
            "--set",
            "ticker.interval=0.05",
            "--trace-file",
            str(trace),
        ],
        capture_output=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert made.returncode == 0, made.stderr.decode(errors="replace")
    expected = trace_transitions(trace)
    assert 4 <= len(expected) <= 500, len(expected)

    started = time.monotonic()
    with (
        inspected(tmp_path, "inspect", str(trace), "--listen", ADDRESS) as app,
        open_page(browser, app.url) as (page, errors),
    ):
        expect(page.locator("#mode")).to_have_text("replay")
        rows = page.locator("#events tr.event")
        expect(rows).to_have_count(len(expected))
        shown = rows.evaluate_all(
            "(rows) => rows.map((r) => [r.dataset.event, r.dataset.state || null])"
        )
        assert [tuple(row) for row in shown] == expected
        # The gobjs of the file, named by their dotted paths, in their last state.
        counter = page.locator("#tree li.gobj[data-name='timer_demo.counter']")
        expect(counter).to_have_attribute("data-state", "ST_COUNTING")

        # Scrub to the middle, then to the first event, then play to the end.
        scrub = page.locator("#scrub")
        timer = page.locator("#tree li.gobj[data-name='timer_demo.ticker.timer']")
        timer.locator(":scope > .row").click()
        expect(page.locator("#detail")).to_have_attribute(
            "data-id", timer.get_attribute("data-id") or ""
        )
        expect(page.locator("#diagram svg g.state.current")).to_have_attribute(
            "data-state", "ST_IDLE"
        )
        middle = len(expected) // 2
        scrub.evaluate(f"(s) => {{ s.value = '{middle}'; s.dispatchEvent(new Event('input')); }}")
        expect(rows).to_have_count(middle + 1)
        expect(page.locator("#scrub-label")).to_contain_text(f"{middle + 1} / {len(expected)}")
        screenshot(page, "replay", tmp_path)
        scrub.evaluate("(s) => { s.value = '0'; s.dispatchEvent(new Event('input')); }")
        expect(rows).to_have_count(1)
        page.select_option("#speed", "100")
        page.click("#play")
        expect(rows).to_have_count(len(expected))
        expect(page.locator("#play")).to_have_text("Play")
        assert errors == [], errors
    assert time.monotonic() - started < 60


def test_the_page_reconnects_when_the_program_comes_back(browser, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    listen = f"127.0.0.1:{free_port()}"
    args = [*echo_server_args(free_port()), "--inspect", listen]
    echo = "#tree li.gobj[data-name='echo']"
    with ExitStack() as stack:
        with inspected(tmp_path, *args, name="first") as first:
            page, errors = stack.enter_context(open_page(browser, first.url))
            page.click(f"{echo} > .row")
            expect(page.locator("#config tr[data-key='port']")).to_have_count(1)
        # The first program is gone (killed): the page says so, keeps what it showed, and
        # tries again.
        expect(page.locator("#status")).to_have_text("closed")
        expect(page.locator(echo)).to_have_count(1)
        with inspected(tmp_path, *args, name="second") as second:
            assert second.url == first.url
            expect(page.locator("#status")).to_have_text("open")
            expect(page.locator("#app")).to_contain_text(f"pid {second.proc.pid}")
            expect(page.locator(echo)).to_have_count(1)
            # Still selected, with the details of the new process's gobj of that name.
            echo_id = page.locator(echo).get_attribute("data-id") or ""
            expect(page.locator("#detail")).to_have_attribute("data-id", echo_id)
            page.evaluate("() => document.querySelector('#config tbody').replaceChildren()")
            expect(page.locator("#config tr[data-key='port']")).to_have_count(1)
        assert errors == [], errors


def test_fsmio_serve_with_the_inspector(browser, tmp_path: Path) -> None:
    import http.client

    from playwright.sync_api import expect

    args = ["serve", "fsmio.examples.wsgi_demo:application", "--port", "0"]
    with (
        inspected(tmp_path, *args, "--inspect", ADDRESS) as app,
        open_page(browser, app.url) as (page, errors),
    ):
        served = re.search(r"serving WSGI on http://127\.0\.0\.1:(\d+)", app.output())
        assert served, app.output()
        expect(page.locator("#tree li.gobj[data-gclass='GWsgiServer']")).to_have_count(1)
        socks = page.locator("#tree li.gobj[data-gclass='GSock']")
        expect(socks).to_have_count(0)
        conn = http.client.HTTPConnection("127.0.0.1", int(served.group(1)), timeout=5)
        try:
            conn.request("GET", "/")
            response = conn.getresponse()
            response.read()
            assert response.status == 200
            expect(socks).to_have_count(1)  # the keep-alive connection
        finally:
            conn.close()
        expect(socks).to_have_count(0)
        assert errors == [], errors


def test_the_event_table_keeps_the_newest_500_rows(browser, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    port = free_port()
    with (
        inspected(tmp_path, *echo_server_args(port), "--inspect", ADDRESS) as app,
        open_page(browser, app.url) as (page, errors),
    ):
        expect(page.locator("#status")).to_have_text("open")
        rows = page.locator("#events tr.event")
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            for n in range(300):  # each round trip is two events at least
                echo_round_trip(conn, f"message {n}".encode())
            expect(rows).to_have_count(500)
            last = rows.last
            expect(last).to_have_attribute("data-event", re.compile(r"^EV_"))
            seqs = rows.evaluate_all("(rows) => rows.map((r) => Number(r.dataset.seq))")
            assert seqs == sorted(seqs) and len(set(seqs)) == 500
        assert errors == [], errors


def test_a_viewer_that_cannot_keep_up_is_shown_its_drops(browser, tmp_path: Path) -> None:
    """The echo demo at full speed with at most 50 events per message: the page is told
    what it missed, and shows it in red; its table stays bounded."""
    from playwright.sync_api import expect

    args = [
        "run",
        str(EXAMPLES / "echo.toml"),
        "--set",
        "client.count=100000000",
        "--set",
        "client.timeout=100",
        "--set",
        "GInspector.max_batch=50",
    ]
    with (
        inspected(tmp_path, *args, "--inspect", ADDRESS) as app,
        open_page(browser, app.url) as (page, errors),
    ):
        mine = page.locator("#counters [data-counter=viewer_dropped]")
        expect(mine).not_to_have_text("0")
        expect(page.locator("#counters .counter.drops")).to_have_class(re.compile(r"\bwarn\b"))
        expect(page.locator("#counters [data-counter=dropped]")).not_to_have_text("0")
        assert int(mine.text_content() or "0") > 0
        assert page.locator("#events tr.event").count() <= 500
        assert errors == [], errors
