"""At-least-once events through JetStream (__durable__=True)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from fsmio.remote import RemoteError

from .apps import Running, make_app, wait_until
from .natsserver import NatsServer

DURABLE = {"durable": True, "durable_retry_delay": 0.1, "durable_ack_wait": 2.0}


@pytest.fixture
def js_server() -> Iterator[NatsServer]:
    server = NatsServer(jetstream=True)
    try:
        server.start()
        yield server
    finally:
        server.close()


def start(server: NatsServer, name: str, **kw: Any) -> tuple[Running, Any, Any]:
    gaplic, rec, router = make_app(name, server.url, **{**DURABLE, **kw})
    running = Running(gaplic)
    wait_until(lambda: rec.named("EV_REMOTE_CONNECTED"), what=f"{name} connected")
    return running, rec, router


def send(running: Running, *args: Any, **kw: Any) -> Any:
    return running.call(lambda: running.gaplic.send_event_outside(*args, **kw))


@pytest.mark.slow
def test_durable_event_waits_for_a_receiver_that_is_down(js_server: NatsServer) -> None:
    alice, _, alice_router = start(js_server, "alice")
    bob, bob_rec, _ = start(js_server, "bob")
    try:
        bob.stop()  # bob is down: its durable consumer keeps its place
        for n in range(5):
            send(alice, "bob", "", "rec", "EV_DATA", "rec", n=n, __durable__=True)
        wait_until(lambda: alice_router.durable.stored == 5, what="stored")
        bob, bob_rec, _ = start(js_server, "bob")
        wait_until(lambda: bob.call(lambda: bob_rec.count) == 5, what="delivered after restart")
        assert bob_rec.out_of_order == 0 and bob_rec.last_n == 4
    finally:
        alice.stop()
        bob.stop()


@pytest.mark.slow
def test_redelivered_after_the_action_raised_then_dead_letter(js_server: NatsServer) -> None:
    alice, _, _ = start(js_server, "alice")
    bob, bob_rec, bob_router = start(js_server, "bob", durable_max_deliver=3)
    try:
        send(alice, "bob", "", "rec", "EV_FLAKY", "rec", fail=1, __durable__=True)
        wait_until(lambda: len(bob_rec.named("EV_FLAKY")) == 2, what="redelivery")
        first, second = bob_rec.named("EV_FLAKY")
        assert first["__redelivered__"] is False and second["__redelivered__"] is True
        # Always failing: delivered max_deliver times, then a dead letter, reported.
        bob_rec.flaky_calls = -100
        send(alice, "bob", "", "rec", "EV_FLAKY", "rec", fail=1000, __durable__=True)
        wait_until(
            lambda: any(kw["reason"] == "dead_letter" for kw in bob_rec.named("EV_REMOTE_ERROR")),
            what="dead letter",
        )
        assert len(bob_rec.named("EV_FLAKY")) == 2 + 3
        assert bob_router.durable.dead_letters == 1
    finally:
        alice.stop()
        bob.stop()


@pytest.mark.slow
def test_duplicate_publish_is_dropped_by_its_id(js_server: NatsServer) -> None:
    bob, bob_rec, _ = start(js_server, "bob")
    try:
        import nats

        async def publish_twice() -> list[bool]:
            nc = await nats.connect(js_server.url)
            try:
                js = nc.jetstream()
                headers = {"Nats-Msg-Id": "alice-x-1", "Fsmio-Src-Gobj": "rec"}
                acks = []
                for _ in range(2):
                    ack = await js.publish(
                        "fsmio.dur.bob.alice.rec.EV_DATA",
                        json.dumps({"n": 0}).encode(),
                        headers=headers,
                    )
                    acks.append(bool(ack.duplicate))
                return acks
            finally:
                await nc.close()

        assert asyncio.run(publish_twice()) == [False, True]
        wait_until(lambda: bob_rec.count == 1, what="one delivery")
        time.sleep(0.3)
        assert bob_rec.count == 1
    finally:
        bob.stop()


@pytest.mark.slow
def test_durable_events_survive_a_server_restart(js_server: NatsServer) -> None:
    alice, alice_rec, alice_router = start(js_server, "alice")
    bob, bob_rec, _ = start(js_server, "bob")
    try:
        bob.stop()
        send(alice, "bob", "", "rec", "EV_DATA", "rec", n=0, __durable__=True)
        wait_until(lambda: alice_router.durable.stored == 1, what="stored")
        js_server.kill()
        wait_until(lambda: alice_rec.named("EV_REMOTE_DISCONNECTED"), what="down")
        # Sent while the server is down: queued, stored once it is back.
        send(alice, "bob", "", "rec", "EV_DATA", "rec", n=1, __durable__=True)
        js_server.restart()
        wait_until(lambda: alice_router.durable.stored == 2, timeout=20, what="stored after")
        bob, bob_rec, _ = start(js_server, "bob")
        wait_until(lambda: bob_rec.count == 2, what="both delivered")
        assert bob_rec.out_of_order == 0
    finally:
        alice.stop()
        bob.stop()


def test_durable_needs_the_setting(nats_server: NatsServer) -> None:
    gaplic, rec, _ = make_app("plain", nats_server.url)
    running = Running(gaplic)
    try:
        wait_until(lambda: rec.named("EV_REMOTE_CONNECTED"))
        with pytest.raises(RemoteError, match="durable = true"):
            send(running, "bob", "", "rec", "EV_DATA", "rec", __durable__=True)
    finally:
        running.stop()
