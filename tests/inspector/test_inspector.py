"""GInspector end to end, without a browser: a real GAplic in a thread (an echo server, a
Pinger and the inspector), real loopback sockets, the ``websockets`` client as the page."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from fsmio import GAplic
from fsmio.core import gobj as core_gobj
from fsmio.core import smachine
from fsmio.core.event import Event
from fsmio.core.gobj import GObj
from fsmio.inspector import GInspector, InspectedEcho, start_inspected_echo
from fsmio.inspector.feed import MAX_MESSAGE

from .feedutil import open_feed, port_of, small_socket, wait_for

TOKEN = "s3cret-token"


# ----------------------------------------------------------------------------------------
#   A gobj that makes events as fast as the loop goes (a load for the feed)
# ----------------------------------------------------------------------------------------
def ac_spin(self: Spinner, event: Event) -> None:
    self.spins += 1
    if self.running:
        self.post_event(self, "EV_SPIN")


def ac_start(self: Spinner, event: Event) -> None:
    self.running = True
    for _ in range(int(event.kw.get("chains", 4))):
        self.post_event(self, "EV_SPIN")


def ac_stop(self: Spinner, event: Event) -> None:
    self.running = False


SPINNER_FSM: dict[str, Any] = {
    "event_list": ("EV_SPIN: top input", "EV_START: top input", "EV_STOP: top input"),
    "state_list": ("ST_SPINNING",),
    "machine": {
        "ST_SPINNING": (
            ("EV_SPIN", ac_spin, None),
            ("EV_START", ac_start, None),
            ("EV_STOP", ac_stop, None),
        )
    },
}


class Spinner(GObj):
    def __init__(self) -> None:
        GObj.__init__(self, SPINNER_FSM)
        self.spins = 0
        self.running = False


def in_loop(gaplic: GAplic, fn: Callable[[], Any], timeout: float = 5.0) -> Any:
    """Run ``fn`` in the GAplic's thread and return its result."""
    done = threading.Event()
    box: list[Any] = []

    def run() -> None:
        try:
            box.append(fn())
        except BaseException as exc:
            box.append(exc)
        finally:
            done.set()

    gaplic.add_callback(run)
    assert done.wait(timeout), "the GAplic's loop did not run the callback"
    if isinstance(box[0], BaseException):
        raise box[0]
    return box[0]


def start_spinner(app: InspectedEcho, chains: int = 4) -> Spinner:
    def create() -> Spinner:
        spinner: Spinner = app.gaplic.create_gobj("spinner", Spinner, app.gaplic)
        spinner.send_event(spinner, "EV_START", chains=chains)
        return spinner

    spinner: Spinner = in_loop(app.gaplic, create)
    return spinner


def stop_spinner(app: InspectedEcho, spinner: Spinner) -> None:
    in_loop(app.gaplic, lambda: spinner.send_event(spinner, "EV_STOP"))


@pytest.fixture
def app() -> Iterator[InspectedEcho]:
    inspected = start_inspected_echo(0, token=TOKEN, interval=0.05, reconnect_every=3)
    try:
        yield inspected
    finally:
        inspected.stop()


@pytest.fixture
def readonly_app() -> Iterator[InspectedEcho]:
    inspected = start_inspected_echo(0, interval=0.05)
    try:
        yield inspected
    finally:
        inspected.stop()


def ids_by_name(tree: dict[str, Any]) -> dict[str, int]:
    return {node["name"]: node["id"] for node in tree["nodes"]}


# ----------------------------------------------------------------------------------------
#   Connecting
# ----------------------------------------------------------------------------------------
def test_hello_then_the_tree_parents_first_without_the_inspector(app: InspectedEcho) -> None:
    with open_feed(app.url) as feed:
        hello = feed.recv()
        assert hello["type"] == "hello"
        assert hello["version"] == 1 and hello["mode"] == "live"
        assert hello["app"] == "inspected_echo" and isinstance(hello["pid"], int)
        assert hello["control"] is True and hello["authed"] is False
        assert hello["history_size"] == 10000 and hello["rate"] == 10
        tree = feed.recv()
        assert tree["type"] == "tree"
        nodes = tree["nodes"]
        by_name = {n["name"]: n for n in nodes}
        assert by_name["inspected_echo"]["parent"] is None
        assert by_name["echo"]["gclass"] == "Echo" and by_name["echo"]["unique"] is True
        assert by_name["echo"]["gclass_key"] == "fsmio.examples.echo_server.Echo"
        assert by_name["connex"]["parent"] == by_name["pinger"]["id"]
        assert by_name["echo"]["state"] == "ST_ECHOING"
        seen: set[int] = set()
        for node in nodes:
            assert node["parent"] is None or node["parent"] in seen
            seen.add(node["id"])
        assert "inspector" not in by_name and not any(n["gclass"] == "GInspector" for n in nodes)
        assert all(n["gclass"] not in ("GHttpServer", "GWebSocket") for n in nodes)


def test_a_connection_to_the_echo_server_is_added_then_removed(app: InspectedEcho) -> None:
    echo = app.gaplic.find_unique_gobj("echo")
    assert echo is not None
    host, port = echo.listening_on()  # type: ignore[attr-defined]
    with open_feed(app.url) as feed:
        tree = feed.of_type("tree")
        before = {n["id"] for n in tree["nodes"]}
        with socket.create_connection((host, port), timeout=5) as client:
            client.sendall(b"hello")
            assert client.recv(16) == b"hello"
            added = feed.until(
                lambda m: (
                    m["type"] == "added"
                    and any(
                        n["gclass"] == "GSock" and n["parent"] is not None and n["id"] not in before
                        for n in m["nodes"]
                    )
                )
            )
            new_ids = {n["id"] for n in added["nodes"] if n["gclass"] == "GSock"}
            # This client's connection: the one whose peer is our socket.
            mine = {
                i
                for i in new_ids
                if feed_state_id_connected(app, i, client.getsockname()[1]) is True
            } or new_ids
        start = time.monotonic()
        feed.until(lambda m: m["type"] == "removed" and bool(mine & set(m["ids"])), timeout=5)
        assert time.monotonic() - start < 5


def feed_state_id_connected(app: InspectedEcho, ident: int, client_port: int) -> bool:
    inspector = app.inspector
    gobj = inspector._by_id.get(ident)
    if gobj is None:
        return False
    peer = gobj.config.addr if hasattr(gobj.config, "addr") else getattr(gobj, "addr", None)
    return bool(peer) and peer[1] == client_port


def test_states_follow_the_gconnex_through_its_connections() -> None:
    # Ticks slower than the flushes, so that each state lasts past a flush (faster ones
    # are coalesced: a ``states`` message holds the latest state of each gobj).
    app = start_inspected_echo(0, interval=0.3, reconnect_every=2)
    try:
        _watch_the_gconnex(app)
    finally:
        app.stop()


def _watch_the_gconnex(app: InspectedEcho) -> None:
    with open_feed(app.url) as feed:
        connex = ids_by_name(feed.of_type("tree"))["connex"]
        seen_states: list[str] = []
        transition: dict[str, Any] = {}

        def watch(message: dict[str, Any]) -> bool:
            if message["type"] == "states":
                seen_states.extend(s for i, s in message["changes"] if i == connex)
            if message["type"] == "events":
                for item in message["items"]:
                    if (
                        item["dst"] == connex
                        and item["state"] == "ST_WAIT_CONNECTED"
                        and item["next_state"] == "ST_CONNECTED"
                    ):
                        transition.update(item)
            return bool(transition) and {"ST_CONNECTED", "ST_DISCONNECTED"} <= set(seen_states)

        feed.until(watch, timeout=10)
        assert transition["event"] == "EV_CONNECTED" and transition["gclass"] == "GConnex"
        assert transition["dst_name"] == "connex"


def test_history_returns_the_ring_oldest_first(app: InspectedEcho) -> None:
    with open_feed(app.url) as feed:
        feed.of_type("tree")
        feed.of_type("events")
        feed.send({"type": "history"})
        history = feed.of_type("history")
        seqs = [item["seq"] for item in history["items"]]
        assert seqs and seqs == sorted(seqs)
        assert history["complete"] is True


def test_select_gives_config_stats_and_subscriptions_both_ways(app: InspectedEcho) -> None:
    with open_feed(app.url) as feed:
        ids = ids_by_name(feed.of_type("tree"))
        feed.send({"type": "select", "id": ids["connex"]})
        detail = feed.of_type("detail")
        assert detail["id"] == ids["connex"] and detail["gclass"] == "GConnex"
        assert "ST_CONNECTED" in detail["states"] and "EV_CONNECT" in detail["input_events"]
        assert "EV_RX_DATA" in detail["output_events"]
        assert "destinations" in detail["config"]
        assert {"connections", "attempts"} <= set(detail["stats"])
        assert any(s["subscriber"] == ids["pinger"] for s in detail["subscriptions"])
        feed.send({"type": "select", "id": ids["pinger"]})
        pinger = feed.until(lambda m: m["type"] == "detail" and m["id"] == ids["pinger"])
        assert any(s["publisher"] == ids["connex"] for s in pinger["subscribed"])
        # Re-sent once a second while selected.
        feed.until(lambda m: m["type"] == "detail" and m["id"] == ids["pinger"], timeout=3)
        feed.send({"type": "select", "id": ids["server"]})
        server = feed.until(lambda m: m["type"] == "detail" and m["id"] == ids["server"])
        assert server["gclass"] == "GServerSock" and "n_gsocks" in server["stats"]
        feed.send({"type": "select", "id": 999_999})
        error = feed.of_type("error")
        assert "no gobj with id 999999" in error["message"]


def test_counters_once_a_second(app: InspectedEcho) -> None:
    with open_feed(app.url) as feed:
        first = feed.of_type("counters", timeout=3)
        second = feed.of_type("counters", timeout=3)
        assert 0.5 < second["t"] - first["t"] < 2.0
        for key in ("events_per_s", "gobjs", "connections", "bytes_in", "bytes_out"):
            assert isinstance(second[key], (int, float))
        assert second["viewers"] == 1 and second["dropped"] == 0
        assert second["events_per_s"] > 0 and second["gobjs"] >= 6
        assert second["loop_lag_ms"] >= 0 and second["queue"] >= 0
        wait_for(lambda: feed.of_type("counters", timeout=3)["bytes_in"] > 0, timeout=5)


# ----------------------------------------------------------------------------------------
#   Filters, coalescing, slow viewers
# ----------------------------------------------------------------------------------------
def test_the_filter_is_applied_in_the_process_hidden_events_never_sent(
    app: InspectedEcho,
) -> None:
    with open_feed(app.url) as feed:
        ids = ids_by_name(feed.of_type("tree"))
        feed.until(lambda m: m["type"] == "events" and len(m["items"]) > 0)
        feed.send({"type": "filter", "event": ["EV_TIMEOUT"], "gobj": ["pinger"]})
        # Messages are handled in order: once this reply is here, the filter applies.
        feed.send({"type": "select", "id": ids["echo"]})
        feed.of_type("detail")
        start = len(feed.raw)
        messages = feed.collect(1.5)
        events = [m for m in messages if m["type"] == "events"]
        items = [item for m in events for item in m["items"]]
        assert items, "the Pinger's timer ticks every 50 ms: some EV_TIMEOUT must pass"
        assert {item["event"] for item in items} == {"EV_TIMEOUT"}
        assert all("pinger" in (item["dst_name"], item["src_name"]) for item in items)
        wire = "".join(raw for raw in feed.raw[start:] if raw.startswith('{"type":"events"'))
        assert "EV_RX_DATA" not in wire and "EV_TIMER_EXPIRED" not in wire
        # States are never filtered: the tree stays right.
        assert any(m["type"] == "states" for m in messages)


@pytest.mark.slow
def test_a_flood_is_coalesced_to_at_most_rate_messages_per_second() -> None:
    app = start_inspected_echo(0, interval=0.5, rate=5, max_batch=200)
    try:
        with open_feed(app.url) as feed:
            feed.of_type("tree")
            spinner = start_spinner(app)
            try:
                feed.until(lambda m: m["type"] == "events" and m["dropped"] > 0, timeout=5)
                messages = feed.collect(2.0)
            finally:
                stop_spinner(app, spinner)
        events = [m for m in messages if m["type"] == "events"]
        assert 2 <= len(events) <= 5 * 2 + 1
        assert all(len(m["items"]) <= 200 for m in events)
        assert sum(m["dropped"] for m in events) > 0
        assert spinner.spins > 1000
    finally:
        app.stop()


@pytest.mark.slow
def test_a_viewer_that_stops_reading_stays_bounded_and_counts_drops() -> None:
    app = start_inspected_echo(0, interval=0.5, history_size=2000, max_batch=500)
    inspector: GInspector = app.inspector
    try:
        sock = small_socket(app.url)
        ws_url = app.url.replace("http://", "ws://") + "feed"
        # max_queue=1: the client's reader stops taking frames off the socket at once.
        with connect(ws_url, sock=sock, max_queue=1, open_timeout=5, close_timeout=1) as _slow:
            wait_for(lambda: inspector.viewers == 1)
            with open_feed(app.url) as live:
                live.of_type("tree")
                spinner = start_spinner(app, chains=8)
                try:
                    slow = next(
                        v
                        for v in inspector._viewers.values()
                        if v.ws.gsock.get_peername()[1] == sock.getsockname()[1]
                    )
                    held: list[int] = []
                    deadline = time.monotonic() + 8
                    while time.monotonic() < deadline:
                        gsock = slow.ws.gsock
                        transport = gsock._transport
                        buffered = transport.get_write_buffer_size() if transport else 0
                        held.append(gsock.pending_output + buffered)
                        assert len(inspector._ring) <= 2000
                        if slow.stalled and slow.cursor.dropped > 0 and len(held) > 50:
                            break
                        time.sleep(0.02)
                    # The live viewer is not held back by the slow one.
                    assert live.of_type("events", timeout=3)["items"]
                finally:
                    stop_spinner(app, spinner)
                assert slow.stalled, "the slow viewer's socket never backed up"
                assert slow.cursor.dropped + slow.cursor.dropped_total > 0
                # At most one flush beyond the transport's high-water mark: one events
                # message of max_batch items, the tree deltas and a counters message.
                assert max(held) < 1_000_000, max(held)
        sock.close()
    finally:
        app.stop()


# ----------------------------------------------------------------------------------------
#   Control and security
# ----------------------------------------------------------------------------------------
def test_control_needs_the_token(app: InspectedEcho) -> None:
    with open_feed(app.url) as feed:
        ids = ids_by_name(feed.of_type("tree"))
        pinger = ids["pinger"]
        feed.send({"type": "trace", "id": pinger, "on": True})
        result = feed.of_type("result")
        assert result["ok"] is False and "auth" in result["message"]
        feed.send({"type": "auth", "token": "wrong"})
        assert feed.of_type("auth")["ok"] is False
        feed.send({"type": "send_event", "id": pinger, "event": "EV_TIMEOUT", "kw": {}})
        assert feed.of_type("result")["ok"] is False
        feed.send({"type": "auth", "token": TOKEN})
        assert feed.of_type("auth")["ok"] is True

        pinger_gobj = app.inspector._by_id[pinger]
        feed.send({"type": "trace", "id": pinger, "on": True})
        assert feed.of_type("result") == {
            "type": "result",
            "request": "trace",
            "ok": True,
            "message": "trace_mach of pinger is on",
            "ret": None,
        }
        assert pinger_gobj.trace_mach == 1
        feed.send({"type": "trace", "id": pinger, "on": False})
        assert feed.of_type("result")["ok"] is True
        assert pinger_gobj.trace_mach == 0

        feed.send({"type": "send_event", "id": pinger, "event": "EV_TIMEOUT", "kw": {"n": [1]}})
        result = feed.of_type("result")
        assert result["ok"] is True and result["request"] == "send_event"
        # An output-only event, or one it does not declare: refused, named.
        feed.send({"type": "send_event", "id": ids["timer"], "event": "EV_TIMEOUT", "kw": {}})
        error = feed.of_type("error")
        assert "'EV_TIMEOUT' is not an input event of GTimer" in error["message"]
        assert "EV_SET_TIMER" in error["message"]
        feed.send({"type": "send_event", "id": pinger, "event": "__class__", "kw": {}})
        assert "not an input event" in feed.of_type("error")["message"]
        feed.send({"type": "send_event", "id": 424242, "event": "EV_TIMEOUT", "kw": {}})
        assert "no gobj with id 424242" in feed.of_type("error")["message"]


def test_a_readonly_inspector_refuses_control_whatever_the_token(
    readonly_app: InspectedEcho,
) -> None:
    with open_feed(readonly_app.url) as feed:
        assert feed.of_type("hello")["control"] is False
        ids = ids_by_name(feed.of_type("tree"))
        feed.send({"type": "auth", "token": ""})
        assert feed.of_type("auth")["ok"] is False
        feed.send({"type": "trace", "id": ids["pinger"], "on": True})
        result = feed.of_type("result")
        assert result["ok"] is False and "read-only" in result["message"]


def test_hostile_messages_get_errors_and_ten_in_a_row_close_the_feed(
    app: InspectedEcho,
) -> None:
    with open_feed(app.url) as feed:
        feed.of_type("tree")
        bad: list[Any] = [
            "not json",
            "[]",
            '{"type": "select", "id": "1"}',
            '{"type": "filter", "event": "EV_X"}',
            '{"type": "rm -rf"}',
        ]
        for data in bad:
            feed.send(data)
            assert feed.of_type("error")["message"]
        feed.ws.send(b"\x00binary")
        assert "binary" in feed.of_type("error")["message"]
        feed.send({"type": "history"})  # a good one resets the count
        feed.of_type("history")
        for _ in range(10):
            feed.send("{}")
        assert feed.closed_code() == 1008


def test_an_oversized_message_closes_the_feed_1009(app: InspectedEcho) -> None:
    with open_feed(app.url) as feed:
        feed.of_type("tree")
        feed.send(json.dumps({"type": "filter", "event": ["x" * (MAX_MESSAGE + 10)]}))
        assert feed.closed_code() == 1009


def test_observers_are_installed_only_while_someone_watches(app: InspectedEcho) -> None:
    inspector: GInspector = app.inspector
    assert not smachine._observers and not core_gobj._lifecycle_observers
    # Off unless something else traces (a machine left with trace_mach on).
    traced_elsewhere = smachine._traced_machines > 0 or bool(smachine._global_trace_mach)
    assert smachine._trace_any is traced_elsewhere
    with open_feed(app.url) as first:
        first.of_type("tree")
        assert smachine._trace_any is True and len(smachine._observers) == 1
        with open_feed(app.url) as second:
            second.of_type("tree")
            assert len(smachine._observers) == 1
        wait_for(lambda: inspector.viewers == 1)
        assert smachine._trace_any is True
    wait_for(lambda: inspector.viewers == 0)
    wait_for(lambda: not smachine._observers, what="the dispatch observer removed")
    assert smachine._trace_any is traced_elsewhere
    assert not smachine._observers and not core_gobj._lifecycle_observers
    assert not inspector._nodes and len(inspector._ring) == 0
    assert in_loop(app.gaplic, lambda: [c.name for c in inspector.dl_childs]) == ["http"]


def test_a_feed_from_another_site_is_refused(app: InspectedEcho) -> None:
    ws_url = app.url.replace("http://", "ws://") + "feed"
    with pytest.raises(InvalidStatus) as info:
        connect(ws_url, origin="http://evil.example", open_timeout=5)  # type: ignore[arg-type]
    assert info.value.response.status_code == 403
    own = app.url.rstrip("/")
    with connect(ws_url, origin=own, open_timeout=5) as ws:  # type: ignore[arg-type]
        assert json.loads(ws.recv(timeout=5))["type"] == "hello"


# ----------------------------------------------------------------------------------------
#   HTTP
# ----------------------------------------------------------------------------------------
def test_the_page_files_and_diagrams_are_served_with_safe_headers(app: InspectedEcho) -> None:
    with httpx.Client(base_url=app.url.rstrip("/"), timeout=5) as http:
        page = http.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert page.headers["cache-control"] == "no-store"
        assert page.headers["x-content-type-options"] == "nosniff"
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert "<script" not in page.text or "src=" in page.text
        script = http.get("/static/inspector.js")
        assert script.status_code == 200
        assert script.headers["content-type"].startswith("text/javascript")
        assert http.get("/static/inspector.css").headers["content-type"].startswith("text/css")
        for bad in ("/static/../c_inspector.py", "/static/%2e%2e/feed.py", "/static/nope.js"):
            assert http.get(bad).status_code == 404, bad
        assert http.get("/etc/passwd").status_code == 404
        key = "fsmio.gobjs.c_connex.GConnex"
        # Diagrams of the gclasses the tree has shown (so once a feed has opened).
        assert http.get(f"/diagram/{key}.svg").status_code == 404
        with open_feed(app.url) as feed:
            tree = feed.of_type("tree")
        assert key in {n["gclass_key"] for n in tree["nodes"]}
        svg = http.get(f"/diagram/{key}.svg")
        assert svg.status_code == 200 and svg.headers["content-type"] == "image/svg+xml"
        assert 'data-state="ST_CONNECTED"' in svg.text and 'class="state"' in svg.text
        assert http.get("/diagram/os.system.svg").status_code == 404
        assert http.get("/feed").status_code == 400
        assert http.post("/", content=b"x").status_code == 405
        assert http.head("/").status_code == 200
        rebinding = http.get("/", headers={"Host": "evil.example:80"})
        assert rebinding.status_code == 403


def test_a_non_loopback_bind_needs_a_token_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    with GAplic("nonloop") as gaplic:
        with pytest.raises(ValueError, match=r"not a loopback address.*token"):
            gaplic.create_gobj("i1", GInspector, gaplic, host="0.0.0.0", port=0)
        with caplog.at_level(logging.WARNING, logger="fsmio.inspector"):
            inspector = gaplic.create_gobj(
                "i2", GInspector, gaplic, host="0.0.0.0", port=0, token=TOKEN
            )
        assert "not a loopback address" in caplog.text
        assert port_of(inspector.url) > 0


def test_the_listening_line_is_logged_with_the_bound_port(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with GAplic("logline") as gaplic, caplog.at_level(logging.INFO, logger="fsmio.inspector"):
        inspector = gaplic.create_gobj("inspector", GInspector, gaplic, port=0)
        port = inspector.config.port
        assert port > 0
        assert f"inspector listening on http://127.0.0.1:{port}/" in caplog.text
        assert inspector.url == f"http://127.0.0.1:{port}/"
