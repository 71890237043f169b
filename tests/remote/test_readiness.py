"""EV_REMOTE_CONNECTED means the server has every subscription (nats-py's flush trap)."""

from __future__ import annotations

import re

from .apps import Running, make_app, wait_until
from .natsserver import NatsServer


def test_subscriptions_reach_the_server_before_the_flush_ping() -> None:
    # nats-py writes flush()'s PING straight to the socket while SUBs wait for its flusher
    # task, so a bare subscribe(); flush() is answered before the server has the SUB.  The
    # server's protocol trace (-V) shows the order the server saw.
    server = NatsServer(extra_args=("-V",))
    try:
        server.start()
        gaplic, rec, _ = make_app("traced", server.url, roles=("tracers",))
        running = Running(gaplic)
        try:
            wait_until(lambda: rec.named("EV_REMOTE_CONNECTED"), what="connected")
        finally:
            running.stop()
        commands = re.findall(r"<<- \[(SUB|PING)[^\]]*\]", server.log())
        subs = [i for i, c in enumerate(commands) if c == "SUB"]
        pings = [i for i, c in enumerate(commands) if c == "PING"]
        # The connect handshake's PING, then every SUB, then the flush's PING.
        # Own events, the role (one member), the role (every member), the reply inbox.
        assert len(subs) == 4, commands
        assert len(pings) >= 2, commands
        assert pings[0] < subs[0] and subs[-1] < pings[1], commands
    finally:
        server.close()
