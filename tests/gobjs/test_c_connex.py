"""GConnex: the reconnecting client.

The FSM tests plug a fake GSock (``FakeGSock``) into the GConnex through ``gsock_gclass``
and run on the fake clock, so attempt times, back-off and jitter are exact.  The
real-socket tests at the end run against GServerSock/GSock on loopback.
"""

from __future__ import annotations

import errno
import itertools
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
import trustme
from hypothesis import given, settings
from hypothesis import strategies as st

from fsmio import GAplic, GConfigValidateError, GObj
from fsmio.core.event import Event
from fsmio.gobjs.c_connex import GConnex, parse_destinations
from fsmio.gobjs.c_sock import GSOCK_FSM
from fsmio.gobjs.c_srv_sock import GServerSock
from tests.conftest import FakeClock
from tests.examples.test_echo_examples import Server
from tests.helpers import drive, drive_for

# ----------------------------------------------------------------------------------------
#   A fake GSock: records what the GConnex asks, and does what the test says
# ----------------------------------------------------------------------------------------
FAKE_GCONFIG: dict[str, list[Any]] = {
    "subscriber": [None, None, 0, None, ""],
    # 'manual': the test calls succeed()/refuse(); 'refuse': EV_DISCONNECTED inside
    # EV_CONNECT; 'refuse_later' / 'accept_later': at the next loop iteration.
    "connect_mode": [str, "manual", 0, None, ""],
    # 'sync': EV_DISCONNECTED inside EV_DROP; 'later': next iteration; 'never': never.
    "drop_mode": [str, "sync", 0, None, ""],
    "ssl_options": [None, None, 0, None, ""],
    "outbuf_overflow": [int, 0, 0, None, ""],
}


def fk_connect(self: FakeGSock, event: Event) -> None:
    self.journal.append(("connect", self.gaplic.time(), event.host, event.port, self))
    if self.phase != "idle":
        self.violations.append(f"EV_CONNECT while {self.phase}")
    self.phase = "connecting"
    self.peer = (event.host, event.port)
    mode = self.config.connect_mode
    if mode == "refuse":
        self.refuse()
    elif mode == "refuse_later":
        self.gaplic.add_callback(self.refuse)
    elif mode == "accept_later":
        self.gaplic.add_callback(self.succeed)


def fk_drop(self: FakeGSock, event: Event) -> None:
    self.journal.append(("drop", self.gaplic.time(), self))
    if self.phase not in ("connecting", "connected"):
        self.violations.append(f"EV_DROP while {self.phase}")
        return
    self.phase = "closing"
    mode = self.config.drop_mode
    if mode == "sync":
        self.finish_close()
    elif mode == "later":
        self.gaplic.add_callback(self.finish_close)


def fk_send(self: FakeGSock, event: Event) -> int:
    if self.phase != "connected":
        self.violations.append(f"{event.event_name} while {self.phase}")
    self.journal.append(("send", self.gaplic.time(), event.data, self))
    if event.event_name == "EV_WRITE_OUTPUT_DATA":
        self.unflushed.append(event.data)
    else:
        self.sent += [*self.unflushed, event.data]
        self.unflushed.clear()
    return len(event.data)


def fk_flush(self: FakeGSock, event: Event) -> None:
    self.sent += self.unflushed
    self.unflushed.clear()


def fk_reading(self: FakeGSock, event: Event) -> None:
    self.journal.append((event.event_name, self.gaplic.time(), self))


FAKE_FSM: dict[str, Any] = {
    # GSock's interface (its top events), taken from it so the fake cannot drift.
    "event_list": tuple(e for e in GSOCK_FSM["event_list"] if ": top " in e),
    "state_list": ("ST_IDLE",),
    "machine": {
        "ST_IDLE": (
            ("EV_CONNECT", fk_connect, None),
            ("EV_DROP", fk_drop, None),
            ("EV_SEND_DATA", fk_send, None),
            ("EV_WRITE_OUTPUT_DATA", fk_send, None),
            ("EV_FLUSH_OUTPUT_DATA", fk_flush, None),
            ("EV_PAUSE_READING", fk_reading, None),
            ("EV_RESUME_READING", fk_reading, None),
        )
    },
}


class FakeGSock(GObj):
    journal: list[tuple[Any, ...]] = []  # replaced per test by the fixture
    all_fakes: list[FakeGSock] = []
    violations: list[str] = []

    def __init__(self) -> None:
        GObj.__init__(self, FAKE_FSM, FAKE_GCONFIG)
        self.phase = "idle"
        self.peer: tuple[str, int] = ("", 0)
        self.sent: list[Any] = []
        self.unflushed: list[Any] = []

    def start_up(self) -> None:
        self.subscribe_event(None, self.config.subscriber)
        FakeGSock.all_fakes.append(self)

    def go_out(self) -> None:
        self.phase = "destroyed"

    # What the "network" does
    def succeed(self) -> None:
        if self._destroyed or self.phase != "connecting":
            return
        self.phase = "connected"
        self.broadcast_event(
            "EV_CONNECTED", gsock=self, peername=self.peer, sockname=("127.0.0.1", 40000)
        )

    def refuse(self, reason: str = "Connection refused") -> None:
        if self._destroyed or self.phase != "connecting":
            return
        self.phase = "idle"
        self.broadcast_event("EV_DISCONNECTED", gsock=self, reason=reason)

    def peer_close(self, reason: str = "closed by peer") -> None:
        assert self.phase == "connected"
        self.phase = "idle"
        self.broadcast_event("EV_DISCONNECTED", gsock=self, reason=reason)

    def finish_close(self) -> None:
        if self._destroyed or self.phase != "closing":
            return
        self.phase = "idle"
        self.broadcast_event("EV_DISCONNECTED", gsock=self, reason="dropped")

    def rx(self, data: bytes) -> None:
        assert self.phase in ("connected", "closing")
        self.broadcast_event("EV_RX_DATA", gsock=self, data=data)

    def transmit_ready(self) -> None:
        self.broadcast_event("EV_TRANSMIT_READY", gsock=self)


# ----------------------------------------------------------------------------------------
#   A subscriber that records every output of the GConnex
# ----------------------------------------------------------------------------------------
OUTPUTS = (
    "EV_CONNECTED",
    "EV_DISCONNECTED",
    "EV_RX_DATA",
    "EV_TRANSMIT_READY",
    "EV_CONNECT_FAILED",
    "EV_UP",
    "EV_DOWN",
    "EV_IN",
)


def rec_any(self: Recorder, event: Event) -> None:
    self.events.append((event.event_name, self.gaplic.time(), dict(event.kw), event.source[-1]))
    hook = self.hooks.get(event.event_name)
    if hook is not None:
        hook(event)


RECORDER_FSM: dict[str, Any] = {
    "event_list": tuple(f"{name}: bottom input" for name in OUTPUTS),
    "state_list": ("ST_IDLE",),
    "machine": {"ST_IDLE": tuple((name, rec_any, None) for name in OUTPUTS)},
}


class Recorder(GObj):
    def __init__(self) -> None:
        GObj.__init__(self, RECORDER_FSM)
        self.events: list[tuple[str, float, dict[str, Any], Any]] = []
        self.hooks: dict[str, Any] = {}

    def names(self) -> list[str]:
        return [name for name, *_ in self.events]


# ----------------------------------------------------------------------------------------
#   Driving the fake clock
# ----------------------------------------------------------------------------------------
def settle(ga: GAplic, limit: int = 100) -> None:
    """Run iterations until no event or callback is queued (bounded)."""
    for _ in range(limit):
        ga._loop()
        if not (ga._qevent or ga._callbacks):
            return
    raise AssertionError("the GAplic did not settle")


def next_deadline(ga: GAplic) -> float | None:
    live = [d for d, _, h in ga._timers if not h.cancelled and not h.done]
    return min(live, default=None)


def advance(ga: GAplic, clock: FakeClock, seconds: float, limit: int = 100_000) -> None:
    """Move the fake clock ``seconds`` ahead, stopping at every timer due on the way."""
    end = clock.now + seconds
    settle(ga)
    for _ in range(limit):
        deadline = next_deadline(ga)
        if deadline is None or deadline > end:
            break
        clock.now = max(clock.now, deadline)
        settle(ga)
    else:
        raise AssertionError("too many timers")
    clock.now = end
    settle(ga)


@pytest.fixture(params=[False, True], ids=["asyncio", "uvloop"])
def ga_real(request: pytest.FixtureRequest) -> Iterator[GAplic]:
    gaplic = GAplic("connex", use_uvloop=request.param)
    try:
        yield gaplic
    finally:
        gaplic.close()


@pytest.fixture
def fakes() -> Iterator[type[FakeGSock]]:
    FakeGSock.journal = []
    FakeGSock.all_fakes = []
    FakeGSock.violations = []
    yield FakeGSock
    assert FakeGSock.violations == []


class Env:
    def __init__(self, ga: GAplic, clock: FakeClock) -> None:
        self.ga = ga
        self.clock = clock
        self.t0 = clock.now
        self.rec: Recorder = ga.create_gobj("rec", Recorder, ga)

    def connex(self, fake_kw: dict[str, Any] | None = None, **kw: Any) -> GConnex:
        kw.setdefault("destinations", [("127.0.0.1", 7000)])
        kw.setdefault("gsock_gclass", FakeGSock)
        connex: GConnex = self.ga.create_gobj(
            "connex", GConnex, self.rec, gsock_kw=fake_kw or {}, **kw
        )
        return connex

    def advance(self, seconds: float) -> None:
        advance(self.ga, self.clock, seconds)

    def settle(self) -> None:
        settle(self.ga)

    def at(self, t: float) -> None:
        """Move to t0 + t."""
        self.advance(self.t0 + t - self.clock.now)

    def connects(self) -> list[tuple[float, str, int]]:
        return [(t - self.t0, h, p) for kind, t, h, p, _ in self._of("connect")]

    def connect_times(self) -> list[float]:
        return [round(t, 9) for t, _, _ in self.connects()]

    def sent(self) -> list[Any]:
        return [entry[2] for entry in self._of("send")]

    def drops(self) -> list[float]:
        return [entry[1] - self.t0 for entry in self._of("drop")]

    def _of(self, kind: str) -> list[tuple[Any, ...]]:
        return [entry for entry in FakeGSock.journal if entry[0] == kind]

    def gsock(self, connex: GConnex) -> FakeGSock:
        gsock = connex.gsock
        assert isinstance(gsock, FakeGSock)
        return gsock


@pytest.fixture
def env(fake_gaplic: GAplic, clock: FakeClock, fakes: type[FakeGSock]) -> Env:
    return Env(fake_gaplic, clock)


# ----------------------------------------------------------------------------------------
#   Configuration
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("h1:1, h2:2", [("h1", 1), ("h2", 2)]),
        ("h1:1 h2:2", [("h1", 1), ("h2", 2)]),
        ("[::1]:8000", [("::1", 8000)]),
        (["a:1", "[::1]:2"], [("a", 1), ("::1", 2)]),
        ([["a", 1], ["b", "2"]], [("a", 1), ("b", 2)]),
        ([("a", 1)], [("a", 1)]),
        (("a", 1), [("a", 1)]),
        (["::1", 5], [("::1", 5)]),
        ([("[::1]", 5)], [("::1", 5)]),
    ],
)
def test_destinations_accepted_forms(value: Any, expected: list[tuple[str, int]]) -> None:
    assert parse_destinations(value) == expected


@pytest.mark.parametrize(
    "value",
    ["", "host", "::1:80", "h:70000", "h:-1", "h:x", [], [("a", 1, 2)], 5, "[::1]80"],
)
def test_destinations_rejected(env: Env, value: Any) -> None:
    with pytest.raises(GConfigValidateError, match="destinations"):
        env.connex(destinations=value)


def test_destinations_from_an_ini_string_reach_the_gsock(env: Env) -> None:
    env.connex(destinations="127.0.0.1:7001, [::1]:7002", fake_kw={"connect_mode": "refuse"})
    env.settle()
    assert env.connects() == [(0, "127.0.0.1", 7001), (0, "::1", 7002)]


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("timeout_waiting_connected", 0),
        ("timeout_between_connections", -1),
        ("timeout_between_connections", float("nan")),
        ("backoff_factor", 0.5),
        ("backoff_max", 0),
        ("backoff_jitter", 1.5),
        ("max_queued_bytes", -1),
        ("ssl_options", 5),
        ("gsock_gclass", int),
        ("host", "example.com"),
        ("port", 80),
    ],
)
def test_bad_config_is_an_error_at_create(env: Env, param: str, value: Any) -> None:
    with pytest.raises(GConfigValidateError, match=param):
        env.connex(**{param: value})


def test_host_and_port_are_views_of_the_current_attempt(env: Env) -> None:
    connex = env.connex(destinations="a:1, b:2", fake_kw={"connect_mode": "refuse"})
    assert (connex.host, connex.port) == ("", 0)
    env.settle()  # a refused, then b tried
    assert (connex.host, connex.port) == ("b", 2)
    assert connex.read_parameter("host") == "b"


def test_ssl_options_and_gsock_kw_reach_the_child(env: Env) -> None:
    connex = env.connex(
        ssl_options='{"cafile": "ca.pem"}',
        fake_kw={"outbuf_overflow": 123, "subscriber": "ignored", "rx_data_event_name": "X"},
    )
    gsock = env.gsock(connex)
    assert gsock.config.ssl_options == {"cafile": "ca.pem"}
    assert gsock.config.outbuf_overflow == 123
    assert gsock.config.subscriber is None  # the GConnex stays its subscriber
    assert gsock.parent is connex
    assert connex["timer"].parent is connex


# ----------------------------------------------------------------------------------------
#   Connecting and re-broadcasting
# ----------------------------------------------------------------------------------------
def test_connects_at_start_up_and_rebroadcasts_with_connex(env: Env) -> None:
    connex = env.connex()
    assert connex.get_current_state() == "ST_DISCONNECTED"
    env.settle()
    assert env.connects() == [(0, "127.0.0.1", 7000)]
    assert connex.get_current_state() == "ST_WAIT_CONNECTED"
    gsock = env.gsock(connex)
    gsock.succeed()
    assert connex.get_current_state() == "ST_CONNECTED"
    gsock.transmit_ready()
    gsock.rx(b"hello")
    gsock.peer_close()
    assert env.rec.names() == [
        "EV_CONNECTED",
        "EV_TRANSMIT_READY",
        "EV_RX_DATA",
        "EV_DISCONNECTED",
    ]
    for _, _, kw, source in env.rec.events:
        assert kw["connex"] is connex
        assert kw["gsock"] is gsock
        assert source is connex
    assert env.rec.events[0][2]["peername"] == ("127.0.0.1", 7000)
    assert env.rec.events[2][2]["data"] == b"hello"
    assert env.rec.events[3][2]["reason"] == "closed by peer"
    assert (connex.attempts, connex.connections) == (1, 1)


def test_renamed_and_suppressed_outputs(env: Env) -> None:
    connex = env.connex(
        connected_event_name="EV_UP",
        disconnected_event_name="EV_DOWN",
        rx_data_event_name="EV_IN",
        transmit_ready_event_name=None,
    )
    env.settle()
    gsock = env.gsock(connex)
    gsock.succeed()
    gsock.transmit_ready()
    gsock.rx(b"x")
    gsock.peer_close()
    assert env.rec.names() == ["EV_UP", "EV_IN", "EV_DOWN"]


def test_transmit_ready_only_to_a_subscriber_that_takes_it(env: Env) -> None:
    """The GSock says EV_TRANSMIT_READY after connect and after waits; a subscriber
    without a row for it must not get a NOT ACCEPTED warning (or, strict, an exception)
    per message."""
    quiet_fsm = {
        "event_list": ("EV_CONNECTED: bottom input",),
        "state_list": ("ST_IDLE",),
        "machine": {"ST_IDLE": (("EV_CONNECTED", rec_any, None),)},
    }

    class Quiet(Recorder):
        def __init__(self) -> None:
            GObj.__init__(self, quiet_fsm)
            self.events = []
            self.hooks = {}

    quiet = env.ga.create_gobj("quiet", Quiet, None, strict_events=True)
    connex = env.ga.create_gobj(
        "c",
        GConnex,
        quiet,
        destinations="h:1",
        gsock_gclass=FakeGSock,
        rx_data_event_name=None,
        disconnected_event_name=None,
    )
    env.settle()
    gsock = env.gsock(connex)
    gsock.succeed()
    for _ in range(3):
        gsock.transmit_ready()
    assert quiet.names() == ["EV_CONNECTED"]


def test_failed_attempts_are_not_announced_by_default(env: Env) -> None:
    env.connex(fake_kw={"connect_mode": "refuse"})
    env.advance(20)
    assert len(env.connects()) == 5
    assert env.rec.events == []


def test_connect_failed_event_and_max_attempts(env: Env) -> None:
    connex = env.connex(
        connect_failed_event_name="EV_CONNECT_FAILED",
        max_attempts=3,
        timeout_between_connections=1,
        fake_kw={"connect_mode": "refuse"},
    )
    env.advance(100)
    assert env.connect_times() == [0, 1, 2]
    failures = [kw for name, _, kw, _ in env.rec.events if name == "EV_CONNECT_FAILED"]
    assert [(f["attempts"], f["gave_up"]) for f in failures] == [(1, False), (2, False), (3, True)]
    assert [f["retry_in"] for f in failures] == [1, 1, -1]  # given up: no retry
    assert failures[-1]["reason"] == "Connection refused"
    assert (failures[-1]["host"], failures[-1]["port"]) == ("127.0.0.1", 7000)
    assert failures[-1]["connex"] is connex
    assert connex.last_error == "Connection refused"
    # Given up: stays down until asked again, then counts from zero.
    env.ga.send_event(connex, "EV_CONNECT")
    env.advance(100)
    assert env.connect_times() == [0, 1, 2, 100, 101, 102]


# ----------------------------------------------------------------------------------------
#   Retry timing: fixed, exponential, capped, jittered, reset
# ----------------------------------------------------------------------------------------
def test_fixed_delay_by_default(env: Env) -> None:
    env.connex(fake_kw={"connect_mode": "refuse"})
    env.advance(21)
    assert env.connect_times() == [0, 5, 10, 15, 20]


def test_refused_later_gives_the_same_times(env: Env) -> None:
    env.connex(timeout_between_connections=2.5, fake_kw={"connect_mode": "refuse_later"})
    env.advance(10)
    assert env.connect_times() == [0, 2.5, 5, 7.5, 10]


def test_exponential_backoff_grows_to_the_cap(env: Env) -> None:
    env.connex(
        timeout_between_connections=1,
        backoff_factor=2,
        backoff_max=20,
        fake_kw={"connect_mode": "refuse"},
    )
    env.advance(100)
    # waits 1, 2, 4, 8, 16, 20, 20, ...
    assert env.connect_times() == [0, 1, 3, 7, 15, 31, 51, 71, 91]


def test_connect_failed_says_when_the_next_attempt_is(env: Env) -> None:
    env.connex(
        destinations="a:1, b:2",
        connect_failed_event_name="EV_CONNECT_FAILED",
        timeout_between_connections=1,
        backoff_factor=2,
        backoff_max=3,
        fake_kw={"connect_mode": "refuse"},
    )
    env.advance(20)
    failures = [kw for name, _, kw, _ in env.rec.events if name == "EV_CONNECT_FAILED"]
    # The next destination of a round at once, then the round's back-off wait (capped).
    assert [(f["host"], f["retry_in"]) for f in failures[:8]] == [
        ("a", 0),
        ("b", 1),
        ("a", 0),
        ("b", 2),
        ("a", 0),
        ("b", 3),
        ("a", 0),
        ("b", 3),
    ]
    assert [t for t, *_ in env.connects()[:6]] == [0, 0, 1, 1, 3, 3]


def test_an_explicit_connect_starts_again_from_the_base_delay(env: Env) -> None:
    connex = env.connex(
        timeout_between_connections=1,
        backoff_factor=2,
        backoff_max=100,
        max_attempts=4,
        fake_kw={"connect_mode": "refuse"},
    )
    env.advance(50)  # 0, 1, 3, 7: gave up
    env.ga.send_event(connex, "EV_CONNECT")  # at 50
    env.advance(10)
    assert env.connect_times() == [0, 1, 3, 7, 50, 51, 53, 57]


def test_cap_never_below_the_base_delay(env: Env) -> None:
    env.connex(
        timeout_between_connections=50,
        backoff_factor=3,
        backoff_max=10,
        fake_kw={"connect_mode": "refuse"},
    )
    env.advance(160)
    assert env.connect_times() == [0, 50, 100, 150]


def test_backoff_resets_after_a_successful_connection(env: Env) -> None:
    connex = env.connex(
        timeout_between_connections=1,
        backoff_factor=2,
        backoff_max=100,
        fake_kw={"connect_mode": "refuse"},
    )
    env.advance(7)  # attempts at 0, 1, 3, 7
    assert env.connect_times() == [0, 1, 3, 7]
    gsock = env.gsock(connex)
    gsock.config.connect_mode = "manual"
    env.advance(8)  # attempt at 15 stays pending
    gsock.succeed()
    env.advance(5)
    gsock.config.connect_mode = "refuse"
    gsock.peer_close()  # at 20: waits the base delay again, then doubles
    env.advance(10)
    assert env.connect_times() == [0, 1, 3, 7, 15, 21, 23, 27]


class _Extreme(random.Random):
    def __init__(self, high: bool) -> None:
        super().__init__(0)
        self.high = high

    def uniform(self, a: float, b: float) -> float:
        return b if self.high else a


@pytest.mark.parametrize(
    ("high", "expected"),
    [
        # waits 2*0.5, 4*0.5, 8*0.5, 10*0.5...
        (False, [0, 1, 3, 7, 12, 17]),
        # waits min(2*1.5, 10)=3, 6, 10 (12 capped), 10...
        (True, [0, 3, 9, 19, 29, 39]),
    ],
)
def test_jitter_extremes(env: Env, high: bool, expected: list[float]) -> None:
    connex = env.connex(
        timeout_between_connections=2,
        backoff_factor=2,
        backoff_max=10,
        backoff_jitter=0.5,
        disabled=True,
        fake_kw={"connect_mode": "refuse"},
    )
    connex.rng = _Extreme(high)
    connex.disabled = False
    env.advance(max(expected) + 0.5)
    assert env.connect_times() == expected


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    base=st.floats(0.1, 10),
    factor=st.floats(1, 4),
    cap=st.floats(0.1, 60),
    jitter=st.floats(0, 1),
)
def test_jitter_stays_within_bounds(
    seed: int, base: float, factor: float, cap: float, jitter: float
) -> None:
    clock = FakeClock()
    FakeGSock.journal = []
    with GAplic("jitter", clock=clock) as ga:
        env = Env(ga, clock)
        connex = env.connex(
            timeout_between_connections=base,
            backoff_factor=factor,
            backoff_max=cap,
            backoff_jitter=jitter,
            disabled=True,
            fake_kw={"connect_mode": "refuse"},
        )
        connex.rng = random.Random(seed)
        connex.disabled = False
        env.advance(0)
        limit = max(cap, base)
        nominal = base
        for _ in range(8):
            env.advance(limit * (1 + jitter) + 1)
        times = env.connect_times()
        waits = [b - a for a, b in itertools.pairwise(times)]
        assert len(waits) >= 8
        for wait in waits[:8]:
            low = min(nominal, limit) * (1 - jitter)
            high = min(min(nominal, limit) * (1 + jitter), limit)
            assert low - 1e-6 <= wait <= high + 1e-6
            nominal = min(nominal * factor, limit)


# ----------------------------------------------------------------------------------------
#   Destinations
# ----------------------------------------------------------------------------------------
def test_round_robin_each_round_then_wait(env: Env) -> None:
    env.connex(
        destinations="a:1, b:2, c:3",
        timeout_between_connections=4,
        fake_kw={"connect_mode": "refuse_later"},
    )
    env.advance(9)
    assert env.connects() == [
        (0, "a", 1),
        (0, "b", 2),
        (0, "c", 3),
        (4, "a", 1),
        (4, "b", 2),
        (4, "c", 3),
        (8, "a", 1),
        (8, "b", 2),
        (8, "c", 3),
    ]


def test_failover_to_the_second_destination(env: Env) -> None:
    connex = env.connex(destinations="a:1, b:2")
    env.settle()
    gsock = env.gsock(connex)
    gsock.refuse()
    env.settle()
    gsock.succeed()
    assert connex.get_current_state() == "ST_CONNECTED"
    assert (connex.host, connex.port) == ("b", 2)
    assert env.rec.events[0][2]["peername"] == ("b", 2)
    # A lost connection tries the next destination at once, then waits for a new round.
    gsock.config.connect_mode = "refuse"
    gsock.peer_close()
    env.advance(5)
    assert env.connects() == [(0, "a", 1), (0, "b", 2), (0, "a", 1), (5, "b", 2), (5, "a", 1)]


def test_get_next_dst_is_overridable(env: Env) -> None:
    class Sticky(GConnex):
        def get_next_dst(self) -> tuple[str, int]:
            return ("sticky", 9)

    env.ga.create_gobj(
        "c",
        Sticky,
        env.rec,
        destinations="a:1, b:2",
        gsock_gclass=FakeGSock,
        gsock_kw={"connect_mode": "refuse"},
    )
    env.settle()
    assert env.connects() == [(0, "sticky", 9), (0, "sticky", 9)]


# ----------------------------------------------------------------------------------------
#   Sending: the queue
# ----------------------------------------------------------------------------------------
def test_queued_data_is_sent_once_in_order_and_does_not_restart_the_attempt(env: Env) -> None:
    connex = env.connex()
    env.settle()
    for chunk in (b"one", "two", bytearray(b"three")):
        assert env.ga.send_event(connex, "EV_SEND_DATA", data=chunk) == 0
    assert len(env.connects()) == 1  # ginsfsm restarted the attempt per message
    assert connex.get_queued_bytes() == 11

    def send_on_connected(event: Event) -> None:
        del env.rec.hooks["EV_CONNECTED"]  # once
        env.ga.send_event(connex, "EV_SEND_DATA", data=b"four")

    env.rec.hooks["EV_CONNECTED"] = send_on_connected
    gsock = env.gsock(connex)
    gsock.succeed()
    assert gsock.sent == [b"one", "two", b"three", b"four"]
    assert connex.get_queued_bytes() == 0
    gsock.peer_close()
    env.advance(5)
    gsock.succeed()
    assert gsock.sent == [b"one", "two", b"three", b"four"]  # nothing replayed


def test_write_and_flush_pass_through_when_connected(env: Env) -> None:
    connex = env.connex()
    env.settle()
    assert env.ga.send_event(connex, "EV_WRITE_OUTPUT_DATA", data=b"q") == 0  # queued
    env.ga.send_event(connex, "EV_FLUSH_OUTPUT_DATA")  # nothing to flush yet
    gsock = env.gsock(connex)
    gsock.succeed()
    assert gsock.sent == [b"q"]
    assert env.ga.send_event(connex, "EV_WRITE_OUTPUT_DATA", data=b"a") == 1
    assert env.ga.send_event(connex, "EV_WRITE_OUTPUT_DATA", data=b"b") == 1
    assert gsock.sent == [b"q"] and gsock.unflushed == [b"a", b"b"]
    env.ga.send_event(connex, "EV_FLUSH_OUTPUT_DATA")
    assert gsock.sent == [b"q", b"a", b"b"]


def test_every_input_event_is_accepted_in_every_state(env: Env) -> None:
    """No (state, input) pair is left to the "NOT ACCEPTED" warning."""
    connex = env.connex(strict_events=True)
    inputs = connex.get_top_input_events() + connex.get_bottom_input_events()
    assert set(inputs) >= {"EV_CONNECT", "EV_DROP", "EV_SEND_DATA", "EV_TIMEOUT"}
    for state in connex.get_state_list():
        for name in inputs:
            connex.set_new_state(state)
            kw: dict[str, Any] = {"data": b"x"} if "DATA" in name else {}
            # From a stranger: every GSock event is checked against the current GSock.
            connex.inject_event(Event(connex, name, [env.rec], **kw))
    # Forcing states makes the GConnex's bookkeeping disagree with the fake; that is
    # not what this test is about.
    FakeGSock.violations.clear()


def test_send_while_connected_goes_straight_to_the_gsock(env: Env) -> None:
    connex = env.connex()
    env.settle()
    gsock = env.gsock(connex)
    gsock.succeed()
    assert env.ga.send_event(connex, "EV_SEND_DATA", data=b"abc") == 3
    assert gsock.sent == [b"abc"]


def test_queue_cap_refuses_data(env: Env) -> None:
    connex = env.connex(max_queued_bytes=5)
    env.settle()
    assert env.ga.send_event(connex, "EV_SEND_DATA", data=b"1234") == 0
    assert env.ga.send_event(connex, "EV_SEND_DATA", data=b"56") == -1
    assert env.ga.send_event(connex, "EV_SEND_DATA", data=b"5") == 0
    assert env.ga.send_event(connex, "EV_SEND_DATA", data=None) == -1
    env.gsock(connex).succeed()
    assert env.gsock(connex).sent == [b"1234", b"5"]


def test_data_waits_for_the_backoff_instead_of_forcing_attempts(env: Env) -> None:
    connex = env.connex(fake_kw={"connect_mode": "refuse"})
    env.advance(1)
    for _ in range(10):
        env.ga.send_event(connex, "EV_SEND_DATA", data=b"x")
    env.advance(4)
    assert env.connect_times() == [0, 5]
    gsock = env.gsock(connex)
    gsock.config.connect_mode = "manual"
    env.advance(5)
    gsock.succeed()
    assert gsock.sent == [b"x"] * 10


# ----------------------------------------------------------------------------------------
#   EV_DROP, disabled, timeouts, destroy
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("drop_mode", ["sync", "later"])
def test_drop_stays_down_until_asked(env: Env, drop_mode: str) -> None:
    connex = env.connex(timeout_between_connections=1, fake_kw={"drop_mode": drop_mode})
    env.settle()
    gsock = env.gsock(connex)
    gsock.succeed()
    env.ga.send_event(connex, "EV_DROP")
    assert connex.get_current_state() == "ST_DISCONNECTED"
    env.advance(1000)
    assert env.rec.names() == ["EV_CONNECTED", "EV_DISCONNECTED"]
    assert env.rec.events[1][2]["reason"] == "dropped"
    assert len(env.connects()) == 1
    assert env.ga.send_event(connex, "EV_SEND_DATA", data=b"again") == 0
    env.settle()
    assert env.connect_times() == [0, 1000]
    gsock.succeed()
    assert gsock.sent == [b"again"]


def test_drop_aborts_a_pending_attempt_and_discards_the_queue(env: Env) -> None:
    connex = env.connex()
    env.settle()
    env.ga.send_event(connex, "EV_SEND_DATA", data=b"stale")
    env.ga.send_event(connex, "EV_DROP")
    assert env.drops() == [0]
    assert connex.get_queued_bytes() == 0
    env.advance(1000)
    assert len(env.connects()) == 1
    env.ga.send_event(connex, "EV_CONNECT")
    env.gsock(connex).succeed()
    assert env.gsock(connex).sent == []  # the stale data is not replayed
    assert env.rec.names() == ["EV_CONNECTED"]  # the aborted attempt was never announced


def test_drop_during_the_backoff_wait_cancels_it(env: Env) -> None:
    connex = env.connex(fake_kw={"connect_mode": "refuse"})
    env.advance(1)
    env.ga.send_event(connex, "EV_DROP")
    env.advance(1000)
    assert env.connect_times() == [0]


def test_drop_before_the_start_up_kick_is_honoured(env: Env) -> None:
    connex = env.connex()
    env.ga.send_event(connex, "EV_DROP")
    env.advance(100)
    assert env.connects() == []


def test_reconnect_waits_for_a_slow_drop_to_finish(env: Env) -> None:
    connex = env.connex(fake_kw={"drop_mode": "later"})
    env.settle()
    gsock = env.gsock(connex)
    gsock.succeed()
    gsock.config.drop_mode = "never"
    env.ga.send_event(connex, "EV_DROP")
    env.ga.send_event(connex, "EV_SEND_DATA", data=b"d")
    assert len(env.connects()) == 1  # not while the GSock is still closing
    gsock.rx(b"late data")  # the peer's last words still reach the subscriber
    gsock.finish_close()
    assert env.rec.names() == ["EV_CONNECTED", "EV_RX_DATA", "EV_DISCONNECTED"]
    assert len(env.connects()) == 2
    assert connex.gsock is gsock
    gsock.succeed()
    assert gsock.sent == [b"d"]


def test_a_gsock_that_never_confirms_the_drop_is_replaced(env: Env) -> None:
    connex = env.connex(timeout_waiting_connected=7, fake_kw={"drop_mode": "never"})
    env.settle()
    old = env.gsock(connex)
    old.succeed()
    env.advance(1)
    env.ga.send_event(connex, "EV_DROP")
    env.ga.send_event(connex, "EV_CONNECT")
    env.advance(6.5)
    assert len(env.connects()) == 1
    env.advance(1)
    assert env.connect_times() == [0, 8]
    new = env.gsock(connex)
    assert new is not old and old.phase == "destroyed"
    assert env.rec.names() == ["EV_CONNECTED", "EV_DISCONNECTED"]
    assert env.rec.events[1][2]["reason"] == "drop not confirmed by the GSock"


def test_wait_connected_timeout_aborts_the_attempt(env: Env) -> None:
    connex = env.connex(timeout_waiting_connected=3, timeout_between_connections=5)
    env.advance(9)
    assert env.drops() == [3]  # ginsfsm left the socket connecting
    assert env.connect_times() == [0, 8]
    assert connex.last_error == "no connection within 3 s"
    env.advance(3)
    assert env.drops() == [3, 11]
    assert env.connect_times() == [0, 8]  # the next one waits the 5 s
    env.advance(5)
    assert env.connect_times() == [0, 8, 16]


def test_wait_connected_timeout_with_a_slow_abort(env: Env) -> None:
    connex = env.connex(
        timeout_waiting_connected=3,
        destinations="a:1, b:2",
        fake_kw={"drop_mode": "later"},
    )
    env.advance(3)
    # The abort is confirmed at the next iteration; b is tried only after it.
    assert env.connects() == [(0, "a", 1), (3, "b", 2)]
    assert connex.gsock is FakeGSock.all_fakes[0]


def test_inactivity_drop_and_lazy_reconnect(env: Env) -> None:
    connex = env.connex(timeout_inactivity=10)
    env.settle()
    gsock = env.gsock(connex)
    gsock.succeed()
    env.advance(5)
    env.ga.send_event(connex, "EV_SEND_DATA", data=b"tx")  # activity at 5
    env.advance(8)
    gsock.rx(b"rx")  # activity at 13
    env.advance(9.5)
    assert connex.get_current_state() == "ST_CONNECTED"
    env.advance(1)
    assert env.drops() == [23]
    assert connex.get_current_state() == "ST_DISCONNECTED"
    assert env.rec.names() == ["EV_CONNECTED", "EV_RX_DATA", "EV_DISCONNECTED"]
    env.advance(1000)
    assert len(env.connects()) == 1  # on demand only
    env.ga.send_event(connex, "EV_SEND_DATA", data=b"later")
    assert env.connect_times() == [0, 1023.5]
    gsock.succeed()
    assert gsock.sent == [b"tx", b"later"]


def test_inactivity_mode_peer_close_stays_down(env: Env) -> None:
    connex = env.connex(timeout_inactivity=10)
    env.settle()
    env.gsock(connex).succeed()
    env.gsock(connex).peer_close()
    env.advance(100)
    assert len(env.connects()) == 1


def test_disabled_property(env: Env) -> None:
    connex = env.connex(disabled=True, timeout_between_connections=1)
    env.advance(10)
    assert env.connects() == []
    assert env.ga.send_event(connex, "EV_SEND_DATA", data=b"x") == -1
    env.ga.send_event(connex, "EV_CONNECT")
    assert env.connects() == []
    connex.disabled = False
    assert env.connect_times() == [10]
    gsock = env.gsock(connex)
    gsock.succeed()
    connex.disabled = True
    assert env.drops() == [10]
    assert env.rec.names() == ["EV_CONNECTED", "EV_DISCONNECTED"]
    env.advance(100)
    assert env.connect_times() == [10]
    connex.write_parameters(disabled="false")  # e.g. from a config file
    assert env.connect_times() == [10, 110]


def test_destroy_cancels_everything(env: Env) -> None:
    connex = env.connex(fake_kw={"connect_mode": "refuse"})
    env.advance(1)
    gsock = env.gsock(connex)
    GObj.destroy_gobj(connex)
    assert gsock.phase == "destroyed"
    env.advance(1000)
    assert env.connect_times() == [0]
    assert next_deadline(env.ga) is None
    assert env.rec.events == []


def test_destroy_while_connected_says_nothing_more(env: Env) -> None:
    connex = env.connex(timeout_inactivity=5)
    env.settle()
    env.gsock(connex).succeed()
    GObj.destroy_gobj(connex)
    env.advance(100)
    assert env.rec.names() == ["EV_CONNECTED"]
    assert next_deadline(env.ga) is None


def test_an_exception_in_the_gsock_connect_counts_as_a_failure(env: Env) -> None:
    """I1: EMFILE raised on socket() is a failed attempt: back-off applies, no spin, and the
    GSock (in an unknown state) is replaced."""

    def explode(self: FakeGSock, event: Event) -> None:
        self.journal.append(("connect", self.gaplic.time(), event.host, event.port, self))
        raise OSError(24, "Too many open files")

    rows = tuple(r for r in FAKE_FSM["machine"]["ST_IDLE"] if r[0] != "EV_CONNECT")
    fsm = {**FAKE_FSM, "machine": {"ST_IDLE": (("EV_CONNECT", explode, None), *rows)}}

    class Exploding(FakeGSock):
        def __init__(self) -> None:
            GObj.__init__(self, fsm, FAKE_GCONFIG)
            self.phase = "idle"
            self.sent = []
            self.unflushed = []

    connex = env.connex(gsock_gclass=Exploding, timeout_between_connections=2)
    env.advance(5)
    assert env.connect_times() == [0, 2, 4]
    assert "Too many open files" in connex.last_error
    assert connex.get_current_state() == "ST_DISCONNECTED"
    assert [f.phase for f in FakeGSock.all_fakes] == ["destroyed"] * 3 + ["idle"]


# ----------------------------------------------------------------------------------------
#   Random event sequences
# ----------------------------------------------------------------------------------------
ACTIONS = st.sampled_from(
    [
        "connect",
        "drop",
        "send",
        "send",
        "succeed",
        "refuse",
        "peer_close",
        "finish_close",
        "rx",
        "disable",
        "enable",
        "tick",
        "tick",
        "long",
    ]
)


@settings(max_examples=150, deadline=None)
@given(
    actions=st.lists(ACTIONS, max_size=60),
    drop_mode=st.sampled_from(["sync", "later", "never"]),
    n_dst=st.integers(1, 3),
    inactivity=st.sampled_from([-1, 3]),
)
def test_random_sequences_keep_the_invariants(
    actions: list[str], drop_mode: str, n_dst: int, inactivity: float
) -> None:
    """Whatever happens: never two attempts on one GSock, never data to an unconnected one,
    every message delivered at most once and in order (or discarded by a drop), nothing
    after an explicit EV_DROP until asked, nothing while disabled."""
    FakeGSock.journal = []
    FakeGSock.all_fakes = []
    FakeGSock.violations = []
    clock = FakeClock()
    with GAplic("random", clock=clock) as ga:
        env = Env(ga, clock)
        connex = env.connex(
            destinations=[("h", i + 1) for i in range(n_dst)],
            timeout_waiting_connected=4,
            timeout_between_connections=2,
            timeout_inactivity=inactivity,
            fake_kw={"drop_mode": drop_mode},
        )
        seq = 0
        discarded: list[int] = []
        stay_down = False
        announced_up = 0
        for action in actions:
            gsock = env.gsock(connex)
            queued_before = [int(d) for d in connex._queue]
            if action == "connect":
                ga.send_event(connex, "EV_CONNECT")
                stay_down = connex.disabled
            elif action == "drop":
                ga.send_event(connex, "EV_DROP")
                discarded += queued_before
                stay_down = True
            elif action == "send":
                seq += 1
                ret = ga.send_event(connex, "EV_SEND_DATA", data=str(seq))
                if ret == -1:
                    discarded.append(seq)
                else:
                    stay_down = False
            elif action == "succeed":
                gsock.succeed()
            elif action == "refuse":
                gsock.refuse()
            elif action == "peer_close":
                if gsock.phase == "connected":
                    gsock.peer_close()
            elif action == "finish_close":
                gsock.finish_close()
            elif action == "rx":
                if gsock.phase == "connected":
                    gsock.rx(b"r")
            elif action == "disable":
                if not connex.disabled:
                    discarded += queued_before
                connex.disabled = True
                stay_down = True
            elif action == "enable":
                was = connex.disabled
                connex.disabled = False
                if was:
                    stay_down = False
            elif action == "tick":
                env.advance(1)
            elif action == "long":
                env.advance(50)
            if stay_down:
                attempts_before = len(env.connects())
                env.advance(30)
                assert len(env.connects()) == attempts_before, "reconnected after EV_DROP"
            delivered = [int(d) for f in FakeGSock.all_fakes for d in f.sent]
            # In order, at most once.
            assert delivered == sorted(set(delivered))
            queued = [int(d) for d in connex._queue]
            assert not set(queued) & set(delivered)
            assert not set(discarded) & (set(delivered) | set(queued)), "discarded data sent"
            assert set(delivered) | set(queued) | set(discarded) == set(range(1, seq + 1))
            # State agrees with the GSock.
            state = connex.get_current_state()
            live = env.gsock(connex)
            if state == "ST_CONNECTED":
                assert live.phase == "connected"
            if state == "ST_WAIT_CONNECTED":
                assert live.phase == "connecting"
            if connex.disabled:
                assert state == "ST_DISCONNECTED"
            # Every EV_DISCONNECTED closes one EV_CONNECTED.
            names = env.rec.names()
            announced_up = names.count("EV_CONNECTED")
            downs = names.count("EV_DISCONNECTED")
            assert announced_up - downs in (0, 1)
        assert FakeGSock.violations == []


# ----------------------------------------------------------------------------------------
#   Real sockets (GSock, GServerSock) on loopback
# ----------------------------------------------------------------------------------------
def fd_count() -> int:
    """Open descriptors, except /dev/null (libuv opens a reserve fd on it lazily)."""
    count = 0
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:  # the fd of the listdir itself
            continue
        count += target != "/dev/null"
    return count


def refusing_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on (bound, then closed)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _has_ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:  # pragma: no cover - a machine without IPv6
        return False


HOSTS = [
    "127.0.0.1",
    pytest.param("::1", marks=pytest.mark.skipif(not _has_ipv6(), reason="no IPv6")),
]


def srv_any(self: SockRecorder, event: Event) -> Any:
    self.events.append((event.event_name, dict(event.kw)))
    if event.event_name == "EV_RX_DATA":
        return self.send_event(event.kw["gsock"], "EV_SEND_DATA", data=event.kw["data"])
    return None


SRV_EVENTS = ("EV_CONNECTED", "EV_DISCONNECTED", "EV_RX_DATA", "EV_TRANSMIT_READY")
SOCK_RECORDER_FSM: dict[str, Any] = {
    "event_list": tuple(f"{name}: bottom input" for name in SRV_EVENTS),
    "state_list": ("ST_IDLE",),
    "machine": {"ST_IDLE": tuple((name, srv_any, None) for name in SRV_EVENTS)},
}


class SockRecorder(GObj):
    """The server side: echoes and records what its connections report."""

    def __init__(self) -> None:
        GObj.__init__(self, SOCK_RECORDER_FSM)
        self.events: list[tuple[str, dict[str, Any]]] = []

    def count(self, name: str) -> int:
        return sum(1 for n, _ in self.events if n == name)

    def data(self) -> bytes:
        return b"".join(kw["data"] for n, kw in self.events if n == "EV_RX_DATA")


def echo_server(ga: GAplic, host: str = "127.0.0.1", port: int = 0) -> tuple[Any, GServerSock]:
    user = ga.create_gobj(None, SockRecorder, None)
    server: GServerSock = ga.create_gobj(None, GServerSock, user, host=host, port=port)
    return user, server


def real_connex(ga: GAplic, **kw: Any) -> tuple[Recorder, GConnex]:
    rec = ga.create_gobj(None, Recorder, None)
    connex: GConnex = ga.create_gobj(None, GConnex, rec, **kw)
    return rec, connex


def rx_bytes(rec: Recorder) -> bytes:
    return b"".join(kw["data"] for name, _, kw, _ in rec.events if name == "EV_RX_DATA")


@pytest.mark.parametrize("host", HOSTS)
def test_real_round_trip_and_reconnect_after_the_server_restarts(
    ga_real: GAplic, host: str
) -> None:
    _, server = echo_server(ga_real, host)
    port = server.config.port
    rec, connex = real_connex(
        ga_real,
        destinations=f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        timeout_between_connections=0.05,
    )
    ga_real.send_event(connex, "EV_SEND_DATA", data=b"queued before connect")
    drive(ga_real, lambda: rx_bytes(rec) == b"queued before connect")
    assert rec.names()[0] == "EV_CONNECTED"
    assert rec.events[0][2]["peername"][:2] == (host, port)
    # Kill the server: listener and connection gone.
    GObj.destroy_gobj(server)
    drive(ga_real, lambda: "EV_DISCONNECTED" in rec.names())
    assert connex.get_current_state() != "ST_CONNECTED"
    drive_for(ga_real, 0.2)  # a few refused attempts while it is down
    assert connex.attempts >= 3 and connex.connections == 1
    _, server2 = echo_server(ga_real, host, port)
    drive(ga_real, lambda: connex.is_connected())
    ga_real.send_event(connex, "EV_SEND_DATA", data=b"+again")
    drive(ga_real, lambda: rx_bytes(rec) == b"queued before connect+again")
    assert rec.names().count("EV_CONNECTED") == 2
    assert connex.connections == 2
    GObj.destroy_gobj(server2)


def test_real_failover_first_refused_second_alive(ga_real: GAplic) -> None:
    _, server = echo_server(ga_real)
    dead = refusing_port()
    rec, connex = real_connex(
        ga_real,
        destinations=[("127.0.0.1", dead), ("127.0.0.1", server.config.port)],
        connect_failed_event_name="EV_CONNECT_FAILED",
    )
    drive(ga_real, connex.is_connected)
    assert connex.port == server.config.port
    failed = [kw for name, _, kw, _ in rec.events if name == "EV_CONNECT_FAILED"]
    assert [(f["port"], f["reason"]) for f in failed] == [(dead, "refused")]
    assert rec.names() == ["EV_CONNECT_FAILED", "EV_CONNECTED", "EV_TRANSMIT_READY"]


def test_real_stays_down_after_drop(ga_real: GAplic) -> None:
    user, server = echo_server(ga_real)
    rec, connex = real_connex(
        ga_real,
        destinations=[("127.0.0.1", server.config.port)],
        timeout_between_connections=0.02,
    )
    drive(ga_real, connex.is_connected)
    ga_real.send_event(connex, "EV_SEND_DATA", data=b"last words")
    ga_real.send_event(connex, "EV_DROP")
    drive(ga_real, lambda: "EV_DISCONNECTED" in rec.names())
    drive_for(ga_real, 0.3)
    assert connex.attempts == 1
    assert user.count("EV_CONNECTED") == 1
    assert user.data() == b"last words"  # a graceful drop delivers what was sent
    assert rec.events[-1][2]["reason"] == "dropped"
    ga_real.send_event(connex, "EV_SEND_DATA", data=b"wake up")
    drive(ga_real, lambda: rx_bytes(rec).endswith(b"wake up"))
    assert connex.attempts == 2


def test_real_inactivity_drop_then_lazy_reconnect(ga_real: GAplic) -> None:
    _, server = echo_server(ga_real)
    rec, connex = real_connex(
        ga_real,
        destinations=[("127.0.0.1", server.config.port)],
        timeout_inactivity=0.1,
    )
    drive(ga_real, lambda: "EV_DISCONNECTED" in rec.names())
    assert rec.events[-1][2]["reason"] == "dropped"
    drive_for(ga_real, 0.3)
    assert connex.attempts == 1
    ga_real.send_event(connex, "EV_SEND_DATA", data=b"x")
    drive(ga_real, lambda: rx_bytes(rec) == b"x")
    assert connex.attempts == 2


def test_real_tls_round_trip(ga_real: GAplic, tmp_path: Any) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_file, ca_file = tmp_path / "cert.pem", tmp_path / "ca.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_file))
    ca.cert_pem.write_to_path(str(ca_file))
    user = ga_real.create_gobj(None, SockRecorder, None)
    server = ga_real.create_gobj(
        None,
        GServerSock,
        user,
        host="127.0.0.1",
        port=0,
        ssl_options={"certfile": str(cert_file)},
    )
    rec, connex = real_connex(
        ga_real,
        destinations=[("127.0.0.1", server.config.port)],
        ssl_options={"cafile": str(ca_file)},
    )
    ga_real.send_event(connex, "EV_SEND_DATA", data=b"secret")
    drive(ga_real, lambda: rx_bytes(rec) == b"secret")
    GObj.destroy_gobj(connex)


def test_real_1000_failed_attempts_leak_no_fd_and_do_not_spin(
    fake_gaplic: GAplic, clock: FakeClock
) -> None:
    """F9 / I1: every refused attempt closes its socket; between attempts nothing runs."""
    ga = fake_gaplic
    dead = refusing_port()
    _, connex = real_connex(
        ga,
        destinations=[("127.0.0.1", dead)],
        timeout_between_connections=1,
        backoff_factor=1.5,
        backoff_max=4,
    )
    drive(ga, lambda: connex.failed_attempts == 1)
    baseline = fd_count()
    for n in range(2, 1001):
        deadline = next_deadline(ga)
        assert deadline is not None
        assert deadline - clock.now == pytest.approx(min(1.5 ** (n - 2), 4))
        # Idle until then: no event, no callback queued — the loop would sleep.
        assert not ga._qevent and not ga._callbacks
        clock.now = deadline
        drive(ga, lambda n=n: connex.failed_attempts == n)
    assert connex.attempts == 1000
    assert connex.last_error == "refused"
    drive_for(ga, 0.05)
    assert fd_count() <= baseline
    GObj.destroy_gobj(connex)
    assert next_deadline(ga) is None


def test_real_no_new_attempt_while_the_gaplic_stops() -> None:
    with GAplic("stopping") as ga:
        _, server = echo_server(ga)
        rec, connex = real_connex(
            ga,
            destinations=[("127.0.0.1", server.config.port), ("127.0.0.1", refusing_port())],
        )

        def stop_when_connected() -> None:
            if connex.is_connected():
                ga.stop()
            else:
                ga.call_later(0.005, stop_when_connected)

        ga.call_later(0.005, stop_when_connected)
        ga.call_later(10, ga.stop)  # bound
        ga.start()
        # The shutdown closed the connection; the next destination was not tried.
        assert rec.names()[-1] == "EV_DISCONNECTED"
        assert rec.events[-1][2]["reason"] == "shutdown"
        assert connex.attempts == 1


def test_real_retries_leave_the_cpu_idle() -> None:
    """F9: a refused destination retried every 0.1 s for 1 s costs (almost) no CPU."""
    with GAplic("idle") as ga:
        _, connex = real_connex(
            ga, destinations=[("127.0.0.1", refusing_port())], timeout_between_connections=0.1
        )
        ga.call_later(1.0, ga.stop)
        cpu = time.process_time()
        ga.start()
        cpu = time.process_time() - cpu
    assert 6 <= connex.attempts <= 12
    assert cpu < 0.5, f"{cpu:.3f} s of CPU for {connex.attempts} attempts"


def test_real_reconnects_after_the_server_process_is_killed_and_restarted(
    ga_real: GAplic, tmp_path: Any
) -> None:
    def start(port: int) -> Server:
        err = tmp_path / f"server-{time.monotonic_ns()}.err"
        with err.open("wb") as stderr:
            proc = subprocess.Popen(
                [sys.executable, "-m", "fsmio.examples.echo_server", "--port", str(port)],
                stdout=subprocess.PIPE,
                stderr=stderr,
            )
        server = Server(proc, err)
        servers.append(server)
        return server

    servers: list[Server] = []
    try:
        first = start(0)
        port = int(first.wait_ready().split()[2])
        rec, connex = real_connex(
            ga_real, destinations=[("127.0.0.1", port)], timeout_between_connections=0.05
        )
        ga_real.send_event(connex, "EV_SEND_DATA", data=b"one")
        drive(ga_real, lambda: rx_bytes(rec) == b"one", timeout=15)
        first.proc.kill()  # SIGKILL: no goodbye
        first.wait()
        drive(ga_real, lambda: "EV_DISCONNECTED" in rec.names(), timeout=15)
        drive_for(ga_real, 0.2)
        assert connex.connections == 1 and connex.attempts >= 2
        second = start(port)
        assert second.wait_ready() == f"READY 127.0.0.1 {port}"
        drive(ga_real, connex.is_connected, timeout=15)
        ga_real.send_event(connex, "EV_SEND_DATA", data=b"+two")
        drive(ga_real, lambda: rx_bytes(rec) == b"one+two", timeout=15)
        assert rec.names().count("EV_CONNECTED") == 2
        assert second.stop(signal.SIGTERM) == 0
    finally:
        for server in servers:
            if server.proc.poll() is None:
                server.proc.kill()
            server.proc.communicate(timeout=15)


@pytest.fixture
def blackhole() -> Iterator[int]:
    """A port whose SYNs are never answered: listen(0), never accept, backlog filled."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(0)
    port = int(lsock.getsockname()[1])
    fillers = []
    for _ in range(4):
        s = socket.socket()
        s.setblocking(False)
        assert s.connect_ex(("127.0.0.1", port)) in (0, errno.EINPROGRESS)
        fillers.append(s)
    try:
        yield port
    finally:
        for s in fillers:
            s.close()
        lsock.close()


def test_real_wait_connected_timeout_aborts_and_fails_over(ga_real: GAplic, blackhole: int) -> None:
    """The watchdog aborts a connect that hangs, then the next destination is tried."""
    _, server = echo_server(ga_real)
    rec, connex = real_connex(
        ga_real,
        destinations=[("127.0.0.1", blackhole), ("127.0.0.1", server.config.port)],
        timeout_waiting_connected=0.2,
        gsock_kw={"connect_timeout": 30},  # only the GConnex's watchdog can end it
        connect_failed_event_name="EV_CONNECT_FAILED",
        disabled=True,
    )
    drive_for(ga_real, 0.01)  # the loop's own descriptors exist from here on
    baseline = fd_count()
    started = time.monotonic()
    connex.disabled = False
    drive(ga_real, connex.is_connected, timeout=10)
    assert 0.15 < time.monotonic() - started < 5
    failed = [kw for name, _, kw, _ in rec.events if name == "EV_CONNECT_FAILED"]
    assert [(f["port"], f["reason"]) for f in failed] == [(blackhole, "no connection within 0.2 s")]
    assert connex.port == server.config.port
    ga_real.send_event(connex, "EV_DROP")
    drive(ga_real, lambda: "EV_DISCONNECTED" in rec.names())
    drive(ga_real, lambda: server.config.n_gsocks == 0)
    drive_for(ga_real, 0.05)
    assert fd_count() <= baseline, os.listdir("/proc/self/fd")


def test_real_transmit_ready_is_asked_of_the_gsock_only_when_wanted(ga_real: GAplic) -> None:
    """The GSock says EV_TRANSMIT_READY after every drain: a GConnex whose subscribers do
    not take it tells the GSock not to bother (a third of a client round trip)."""
    _, server = echo_server(ga_real)
    quiet = ga_real.create_gobj(None, SockRecorder, None)  # takes EV_TRANSMIT_READY...
    connex: GConnex = ga_real.create_gobj(
        None,
        GConnex,
        quiet,
        destinations=[("127.0.0.1", server.config.port)],
        transmit_ready_event_name=None,  # ...but this GConnex does not send it
    )
    gsock = connex.gsock
    assert gsock is not None
    assert gsock.config.transmit_ready_event_name is None
    rec = ga_real.create_gobj(None, Recorder, None)
    connex.write_parameters(transmit_ready_event_name="EV_TRANSMIT_READY")
    connex.subscribe_event("EV_TRANSMIT_READY", rec)
    assert gsock.config.transmit_ready_event_name == "EV_TRANSMIT_READY"
    drive(ga_real, lambda: "EV_TRANSMIT_READY" in rec.names())


def test_bare_host_and_port_settings_do_not_reach_a_gconnex() -> None:
    """A GAplic-wide ``port=`` (for its servers) leaves GConnex's read-only views alone;
    a key aimed at the GConnex still raises."""
    with GAplic("bare", port=8000, host="127.0.0.1") as ga:
        connex = ga.create_gobj("c", GConnex, None, destinations=[("127.0.0.1", 9)], disabled=True)
        assert connex.config.destinations == [("127.0.0.1", 9)]
        assert (connex.host, connex.port) == ("", 0)  # no attempt yet: untouched by port=
    for key in ("GConnex.port", "c.port"):
        with GAplic("aimed", **{key: 8000}) as ga, pytest.raises(GConfigValidateError):
            ga.create_gobj("c", GConnex, None, destinations=[("127.0.0.1", 9)], disabled=True)
