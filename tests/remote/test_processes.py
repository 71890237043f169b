"""A GAplic in another process: round trip, the readiness race, order per sender."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .apps import Running, make_app, wait_until
from .natsserver import NatsServer

ROOT = Path(__file__).resolve().parents[2]


class Peer:
    """``python -m tests.remote.apps URL NAME ROLE LOOP`` in a child process."""

    def __init__(self, url: str, name: str, role: str = "", loop: str = "uvloop") -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.remote.apps", url, name, role, loop],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def wait_ready(self, timeout: float = 20.0) -> None:
        assert self.proc.stdout is not None
        # The child prints READY once its subscriptions are confirmed; readline is
        # bounded by the child's own life (killed in stop()) and the test timeout.
        line = self.proc.stdout.readline()
        assert line.strip() == "READY", f"peer said {line!r}: {self.stderr()}"

    def stderr(self) -> str:
        if self.proc.poll() is None:
            return ""
        assert self.proc.stderr is not None
        return self.proc.stderr.read()[-3000:]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            code = self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(20)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        return code


@pytest.fixture
def sender(nats_server: NatsServer) -> Iterator[tuple[Running, Any]]:
    gaplic, rec, _ = make_app("sender", nats_server.url)
    running = Running(gaplic)
    try:
        wait_until(lambda: rec.named("EV_REMOTE_CONNECTED"), what="sender connected")
        yield running, rec
    finally:
        running.stop()


def ask(running: Running, rec: Any, target: str, event: str, **kw: Any) -> dict[str, Any]:
    before = len(rec.named(event))
    running.call(
        lambda: running.gaplic.send_event_outside(
            target, "", "rec", event, "rec", __subscribe_response__=True, **kw
        )
    )
    wait_until(lambda: len(rec.named(event)) > before, timeout=30, what=f"answer to {event}")
    return rec.named(event)[before]


@pytest.mark.slow
@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_round_trip_burst_and_order_with_another_process(
    nats_server: NatsServer, sender: tuple[Running, Any], loop: str
) -> None:
    running, rec = sender
    peer = Peer(nats_server.url, "peer", loop=loop)
    try:
        peer.wait_ready()
        # At once after READY (the readiness race): a burst of 20 000 in one go, then a
        # request that counts them.  flush() not being a barrier would lose the first.
        total = 20_000

        def burst() -> None:
            for n in range(total):
                running.gaplic.send_event_outside("peer", "", "rec", "EV_DATA", "rec", n=n)

        running.call(burst, timeout=60)
        answer = ask(running, rec, "peer", "EV_COUNT", __timeout__=30)
        assert answer["__error__"] is None
        assert answer["__action_return__"] == {
            "count": total,
            "out_of_order": 0,
            "last": total - 1,
        }
        pong = ask(running, rec, "peer", "EV_PING", n=42, text="ünïcode")
        assert pong["__action_return__"] == {"pong": 42, "by": "peer"}
        assert pong["__intra_event__"]["origin_gaplic"] == "peer"
    finally:
        assert peer.stop() == 0, peer.stderr()


@pytest.mark.slow
def test_role_reaches_exactly_one_member_and_all_reaches_each(
    nats_server: NatsServer, sender: tuple[Running, Any]
) -> None:
    running, rec = sender
    peers = [Peer(nats_server.url, f"worker{i}", role="workers") for i in range(2)]
    try:
        for peer in peers:
            peer.wait_ready()
        total = 400

        def burst() -> None:
            for n in range(total):
                running.gaplic.send_event_outside("", "workers", "rec", "EV_DATA", "rec", n=n)

        running.call(burst)

        def to_all() -> None:
            for n in range(total, total + 50):
                running.gaplic.send_event_outside(
                    "", "workers", "rec", "EV_DATA", "rec", n=n, __all_members__=True
                )

        counts = []
        for i in range(2):
            answer = ask(running, rec, f"worker{i}", "EV_COUNT")
            counts.append(answer["__action_return__"]["count"])
        # Each event handled once in total, by one member of the queue group.
        assert sum(counts) == total, counts
        assert all(count > 0 for count in counts), counts
        # __all_members__: each member gets every one of them, once.
        running.call(to_all)
        for i in range(2):
            answer = ask(running, rec, f"worker{i}", "EV_COUNT")
            assert answer["__action_return__"]["count"] == counts[i] + 50
    finally:
        for peer in peers:
            assert peer.stop() == 0, peer.stderr()
