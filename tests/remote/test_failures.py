"""Failures become events or clear errors, never silence (research §7)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from fsmio import GAplic, GConfigValidateError
from fsmio.remote import (
    GRemote,
    RemoteDisconnectedError,
    RemoteNameError,
    RemotePayloadTooLargeError,
)

from .apps import Running, make_app, wait_until
from .natsserver import NatsServer


def connected(rec: Any, n: int = 1) -> bool:
    return len(rec.named("EV_REMOTE_CONNECTED")) >= n


@pytest.fixture
def two(nats_server: NatsServer) -> Iterator[tuple[Any, Any]]:
    apps = []
    try:
        for name in ("alice", "bob"):
            gaplic, rec, router = make_app(name, nats_server.url)
            apps.append((Running(gaplic), rec, router))
        for _, rec, _ in apps:
            wait_until(lambda rec=rec: connected(rec), what="connected")
        yield apps[0], apps[1]
    finally:
        for running, _, _ in apps:
            running.stop()


def send(running: Running, *args: Any, **kw: Any) -> Any:
    return running.call(lambda: running.gaplic.send_event_outside(*args, **kw))


# ----------------------------------------------------------------------------------------
#   Timeouts
# ----------------------------------------------------------------------------------------
@pytest.mark.slow
def test_timeout_then_the_late_answer_is_dropped(two: Any) -> None:
    (alice, alice_rec, alice_router), _ = two
    started = time.monotonic()
    send(
        alice,
        "bob",
        "",
        "rec",
        "EV_SLOW",
        "rec",
        seconds=0.8,
        __subscribe_response__=True,
        __timeout__=0.2,
    )
    wait_until(lambda: alice_rec.named("EV_SLOW"), what="the timeout")
    outcome = alice_rec.named("EV_SLOW")[0]
    assert outcome["__error__"] == "timeout"
    assert outcome["__action_return__"] is None
    assert 0.15 < time.monotonic() - started < 0.75
    # bob answers at 0.8 s: the answer is dropped (counted, logged), not delivered.
    wait_until(lambda: alice_router.late_replies == 1, what="the late answer")
    time.sleep(0.1)
    assert len(alice_rec.named("EV_SLOW")) == 1
    assert alice_router.timeouts == 1


# ----------------------------------------------------------------------------------------
#   Server restarts
# ----------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("how", ["kill", "stop"])
def test_server_restart_while_idle(two: Any, nats_server: NatsServer, how: str) -> None:
    (alice, alice_rec, _), (_, bob_rec, _) = two
    getattr(nats_server, how)()
    wait_until(lambda: alice_rec.named("EV_REMOTE_DISCONNECTED"), what="alice disconnected")
    wait_until(lambda: bob_rec.named("EV_REMOTE_DISCONNECTED"), what="bob disconnected")
    nats_server.restart()
    wait_until(lambda: connected(alice_rec, 2) and connected(bob_rec, 2), what="reconnected")
    # The subscriptions came back without user code.
    send(alice, "bob", "", "rec", "EV_PING", "rec", n=9, __subscribe_response__=True)
    wait_until(lambda: alice_rec.named("EV_PING"), what="answer after the restart")
    assert alice_rec.named("EV_PING")[0]["__action_return__"]["pong"] == 9


@pytest.mark.slow
def test_server_killed_while_sending(two: Any, nats_server: NatsServer) -> None:
    (alice, alice_rec, _), (_, bob_rec, _) = two
    # A request in flight when the server dies ends in a timeout, never retried.
    send(
        alice,
        "bob",
        "",
        "rec",
        "EV_SLOW",
        "rec",
        seconds=0.3,
        __subscribe_response__=True,
        __timeout__=1.0,
    )
    time.sleep(0.1)
    nats_server.kill()
    outcomes: list[str] = []

    def keep_sending() -> None:
        for n in range(100):
            try:
                alice.gaplic.send_event_outside("bob", "", "rec", "EV_DATA", "rec", n=n)
                outcomes.append("sent")
            except RemoteDisconnectedError:
                outcomes.append("refused")

    wait_until(lambda: alice_rec.named("EV_REMOTE_DISCONNECTED"), what="disconnected")
    alice.call(keep_sending)
    # Every send while down fails at once: none is buffered for a later coin toss.
    assert outcomes == ["refused"] * 100
    wait_until(lambda: alice_rec.named("EV_SLOW"), what="the in-flight request's end")
    assert alice_rec.named("EV_SLOW")[0]["__error__"] == "timeout"
    nats_server.restart()
    wait_until(lambda: connected(alice_rec, 2) and connected(bob_rec, 2), what="reconnected")
    alice.call(keep_sending)
    assert outcomes[100:] == ["sent"] * 100
    send(alice, "bob", "", "rec", "EV_COUNT", "rec", __subscribe_response__=True)
    wait_until(lambda: alice_rec.named("EV_COUNT"), what="count")
    # What bob got after the restart, in order; nothing of the refused ones.
    assert alice_rec.named("EV_COUNT")[0]["__action_return__"]["count"] == 100


@pytest.mark.slow
def test_reconnect_budget_spent_closes_for_good(nats_server: NatsServer) -> None:
    gaplic, rec, _ = make_app(
        "dora", nats_server.url, max_reconnect_attempts=2, reconnect_time_wait=0.1
    )
    running = Running(gaplic)
    try:
        wait_until(lambda: connected(rec))
        nats_server.kill()
        wait_until(lambda: rec.named("EV_REMOTE_CLOSED"), timeout=20, what="closed")
        assert rec.named("EV_REMOTE_CLOSED")[0]["reason"] == "reconnect attempts exhausted"
        # The GAplic itself keeps running.
        assert running.call(lambda: gaplic.is_running())
    finally:
        running.stop()


def test_no_server_at_start_reports_errors_and_connects_later(nats_server: NatsServer) -> None:
    url = nats_server.url
    nats_server.kill()
    gaplic, rec, _ = make_app("eve", url, reconnect_time_wait=0.1)
    running = Running(gaplic)
    try:
        wait_until(lambda: rec.named("EV_REMOTE_ERROR"), what="connect errors")
        assert rec.named("EV_REMOTE_ERROR")[0]["reason"] == "connect_failed"
        nats_server.restart()
        wait_until(lambda: connected(rec), what="connected once the server is up")
    finally:
        running.stop()


# ----------------------------------------------------------------------------------------
#   Bad input at the sender
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["a.b", "a b", "*", ">", "", "x>"])
def test_bad_gaplic_name_rejected_at_start(name: str) -> None:
    gaplic = GAplic(name or None)
    try:
        with pytest.raises(RemoteNameError, match="cannot be used in a NATS subject"):
            gaplic.create_gobj("router", GRemote, None)
    finally:
        gaplic.close()


def test_bad_role_and_prefix_rejected_at_start() -> None:
    gaplic = GAplic("fine", roles=("ok", "not ok"))
    try:
        with pytest.raises(RemoteNameError, match="role 'not ok'"):
            gaplic.create_gobj("router", GRemote, None)
    finally:
        gaplic.close()
    gaplic = GAplic("fine")
    try:
        with pytest.raises(GConfigValidateError, match="subject_prefix"):
            gaplic.create_gobj("router", GRemote, None, subject_prefix="a..b")
    finally:
        gaplic.close()


def test_bad_names_and_payloads_at_send(two: Any) -> None:
    (alice, _, _), _ = two
    with pytest.raises(RemoteNameError, match=r"destination gobj name 'a\.b'"):
        send(alice, "bob", "", "a.b", "EV_PING", "rec")
    with pytest.raises(RemoteNameError, match="event name 'EV >'"):
        send(alice, "bob", "", "rec", "EV >", "rec")
    with pytest.raises(TypeError, match=r"'EV_PING'.*not JSON-serialisable"):
        send(alice, "bob", "", "rec", "EV_PING", "rec", when=object())
    with pytest.raises(TypeError, match=r"'EV_PING'.*not JSON-serialisable"):
        send(alice, "bob", "", "rec", "EV_PING", "rec", x=float("nan"))
    with pytest.raises(TypeError, match="must be a unique-named gobj"):
        send(alice, "bob", "", "rec", "EV_PING", "nobody")
    with pytest.raises(TypeError, match="to yourself"):
        send(alice, "alice", "", "rec", "EV_PING", "rec")
    with pytest.raises(ValueError, match="__timeout__"):
        send(alice, "bob", "", "rec", "EV_PING", "rec", __subscribe_response__=True, __timeout__=0)


def test_oversized_payload_is_a_local_error_with_size_and_limit() -> None:
    server = NatsServer(config="max_payload: 4096\n")
    try:
        server.start()
        gaplic, rec, router = make_app("big", server.url)
        running = Running(gaplic)
        try:
            wait_until(lambda: connected(rec))
            with pytest.raises(RemotePayloadTooLargeError, match=r"'EV_PING'.*bytes.*4096"):
                send(running, "bob", "", "rec", "EV_PING", "rec", blob="x" * 5000)
            assert router.is_connected()  # the connection is not hurt
        finally:
            running.stop()
    finally:
        server.close()


def test_router_enabled_points_to_the_new_settings() -> None:
    with pytest.raises(GConfigValidateError, match=r"GRemote.*docs/remote.md"):
        GAplic("old", router_enabled=True)


def test_no_router_is_a_clear_error() -> None:
    gaplic = GAplic("alone")
    try:
        with pytest.raises(Exception, match="no remote events"):
            gaplic.send_event_outside("bob", "", "rec", "EV_PING", "x")
    finally:
        gaplic.close()


# ----------------------------------------------------------------------------------------
#   Hostile input at the receiver
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "payload",
    [b"not json", b"[1, 2]", b'{"__class__": "x"}', b"[" * 100_000, b'{"a": NaN'],
)
def test_hostile_payload_is_refused_and_reported(
    two: Any, nats_server: NatsServer, payload: bytes
) -> None:
    _, (_, bob_rec, _) = two
    import nats

    async def inject() -> Any:
        nc = await nats.connect(nats_server.url)
        try:
            # Plain, then as a request: the request gets the refusal as its answer.
            await nc.publish("fsmio.ev.bob.mallory.rec.EV_PING", payload)
            msg = await nc.request("fsmio.ev.bob.mallory.rec.EV_PING", payload, timeout=5)
            return json.loads(msg.data)
        finally:
            await nc.close()

    answer = asyncio.run(inject())
    assert answer["__error__"] == "bad_payload"
    wait_until(lambda: bob_rec.named("EV_REMOTE_ERROR"), what="error event")
    assert bob_rec.named("EV_REMOTE_ERROR")[0]["reason"] == "bad_payload"
    assert bob_rec.named("EV_PING") == []


# ----------------------------------------------------------------------------------------
#   Stop, slow consumers
# ----------------------------------------------------------------------------------------
@pytest.mark.slow
def test_stop_drains_answering_the_request_in_flight(nats_server: NatsServer) -> None:
    alice_app = make_app("alice", nats_server.url)
    bob_app = make_app("bob", nats_server.url, gaplic_kw={"shutdown_grace": 5.0})
    alice, alice_rec = Running(alice_app[0]), alice_app[1]
    bob, bob_rec = Running(bob_app[0]), bob_app[1]
    try:
        wait_until(lambda: connected(alice_rec) and connected(bob_rec))
        send(alice, "bob", "", "rec", "EV_SLOW", "rec", seconds=0.4, __subscribe_response__=True)
        time.sleep(0.1)  # bob is inside the action
        started = time.monotonic()
        bob.stop()
        assert time.monotonic() - started < 5.0
        wait_until(lambda: alice_rec.named("EV_SLOW"), what="the answer")
        assert alice_rec.named("EV_SLOW")[0]["__action_return__"] == "slow done"
        assert alice_rec.named("EV_SLOW")[0]["__error__"] is None
    finally:
        if bob.worker.is_alive():
            bob.stop()
        alice.stop()


@pytest.mark.slow
def test_slow_consumer_drops_are_reported(nats_server: NatsServer) -> None:
    alice_app = make_app("alice", nats_server.url)
    bob_app = make_app("bob", nats_server.url, max_pending_events=5)
    alice, alice_rec = Running(alice_app[0]), alice_app[1]
    bob, bob_rec = Running(bob_app[0]), bob_app[1]
    try:
        wait_until(lambda: connected(alice_rec) and connected(bob_rec))

        def burst() -> None:
            for _ in range(30):
                alice.gaplic.send_event_outside("bob", "", "rec", "EV_SLOW", "rec", seconds=0.01)

        alice.call(burst)
        wait_until(
            lambda: any(kw["reason"] == "slow_consumer" for kw in bob_rec.named("EV_REMOTE_ERROR")),
            what="slow consumer reported",
        )
    finally:
        alice.stop()
        bob.stop()


def test_send_from_a_foreign_thread_is_refused(two: Any) -> None:
    (alice, _, _), _ = two
    with pytest.raises(RuntimeError, match="not its GAplic's"):
        alice.gaplic.send_event_outside("bob", "", "rec", "EV_PING", "rec")
