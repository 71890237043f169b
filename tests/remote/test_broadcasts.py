"""subscribe_event_outside: the broadcasts of an exported gobj of another GAplic."""

from __future__ import annotations

import time
from typing import Any

from .apps import Running, make_app, wait_until
from .natsserver import NatsServer


def test_exported_broadcasts_reach_remote_subscribers(nats_server: NatsServer) -> None:
    pub_app = make_app("exchange", nats_server.url, exported=["rec"])
    sub_app = make_app("trader", nats_server.url)
    hidden_app = make_app("hidden", nats_server.url)  # not exported: publishes nothing
    apps = [pub_app, sub_app, hidden_app]
    running = [Running(gaplic) for gaplic, _, _ in apps]
    exchange, trader, hidden = running
    (_, _, exchange_router), (_, trader_rec, _), _ = apps
    try:
        wait_until(lambda: all(rec.named("EV_REMOTE_CONNECTED") for _, rec, _ in apps))

        def subscribe(source: str) -> Any:
            return trader.gaplic.subscribe_event_outside(source, "", "rec", "EV_TICK", "rec")

        assert trader.call(lambda: subscribe("exchange")) is True
        assert trader.call(lambda: subscribe("hidden")) is True

        def tick(running: Running, n: int) -> None:
            running.call(lambda: running.gaplic.send_event("rec", "EV_MAKE_TICK", n=n))

        # A SUB is confirmed only by a later round trip: wait until one tick gets through.
        deadline = time.monotonic() + 10
        while not trader_rec.named("EV_TICK") and time.monotonic() < deadline:
            tick(exchange, 0)
            time.sleep(0.02)
        tick(hidden, 99)
        for n in (1, 2, 3):
            tick(exchange, n)
        wait_until(lambda: [kw["n"] for kw in trader_rec.named("EV_TICK")][-3:] == [1, 2, 3])
        received = trader_rec.named("EV_TICK")
        assert all(kw["__intra_event__"]["origin_gaplic"] == "exchange" for kw in received)
        assert 99 not in [kw["n"] for kw in received]
        assert exchange_router.sent >= 4

        assert trader.call(
            lambda: trader.gaplic.unsubscribe_event_outside("exchange", "", "rec", "EV_TICK", "rec")
        )
        count = len(trader_rec.named("EV_TICK"))
        tick(exchange, 4)
        # A request round trip after the tick: anything published before it has arrived.
        trader.call(
            lambda: trader.gaplic.send_event_outside(
                "exchange", "", "rec", "EV_PING", "rec", __subscribe_response__=True
            )
        )
        wait_until(lambda: trader_rec.named("EV_PING"))
        assert len(trader_rec.named("EV_TICK")) == count
    finally:
        for run in running:
            run.stop()
