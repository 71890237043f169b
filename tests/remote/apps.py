"""Gobjs and helpers shared by the remote-event tests (also run as a peer process)."""

from __future__ import annotations

import concurrent.futures
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from fsmio import GAplic, GObj, setup_gaplic_thread
from fsmio.core.event import Event
from fsmio.remote import GRemote


def ac_record(self: Recorder, event: Event) -> Any:
    kw = dict(event.kw)
    intra = kw.get("__intra_event__")
    if intra is not None:
        kw["__intra_event__"] = {
            "origin_gaplic": intra.origin_gaplic,
            "origin_role": intra.origin_role,
            "origin_gobj": intra.origin_gobj,
            "subject": intra.subject,
        }
    with self.lock:
        self.events.append((event.event_name, kw))
    return None


def is_answer(self: Recorder, event: Event) -> bool:
    """The outcome of a __subscribe_response__ comes back as the same event: record it."""
    if "__action_return__" in event.kw:
        ac_record(self, event)
        return True
    return False


def ac_ping(self: Recorder, event: Event) -> Any:
    if is_answer(self, event):
        return None
    ac_record(self, event)
    return {"pong": event.kw.get("n"), "by": self.gaplic.name}


def ac_data(self: Recorder, event: Event) -> Any:
    if is_answer(self, event):
        return None
    n = event.kw.get("n")
    if isinstance(n, int):
        if n != self.last_n + 1:
            self.out_of_order += 1
        self.last_n = n
    self.count += 1
    return None


def ac_count(self: Recorder, event: Event) -> Any:
    if is_answer(self, event):
        return None
    return {"count": self.count, "out_of_order": self.out_of_order, "last": self.last_n}


def ac_slow(self: Recorder, event: Event) -> Any:
    if is_answer(self, event):
        return None
    time.sleep(float(event.kw.get("seconds", 0.5)))
    return "slow done"


def ac_flaky(self: Recorder, event: Event) -> Any:
    """Raises the first ``fail`` times it gets an event; records every delivery."""
    ac_record(self, event)
    self.flaky_calls += 1
    if self.flaky_calls <= int(event.kw.get("fail", 0)):
        raise RuntimeError(f"flaky failure {self.flaky_calls}")
    return None


def ac_boom(self: Recorder, event: Event) -> Any:
    if is_answer(self, event):
        return None
    raise RuntimeError("boom")


def ac_tick(self: Recorder, event: Event) -> Any:
    self.broadcast_event("EV_TICK", n=event.kw.get("n"))
    return None


RECORDER_FSM = {
    "event_list": (
        "EV_PING: top input",
        "EV_DATA: top input",
        "EV_COUNT: top input",
        "EV_SLOW: top input",
        "EV_BOOM: top input",
        "EV_FLAKY: top input",
        "EV_MAKE_TICK: top input",
        "EV_ONLY_BUSY: top input",
        "EV_TICK: top input top output",
        "EV_REMOTE_CONNECTED: bottom input",
        "EV_REMOTE_DISCONNECTED: bottom input",
        "EV_REMOTE_CLOSED: bottom input",
        "EV_REMOTE_ERROR: bottom input",
    ),
    "state_list": ("ST_IDLE", "ST_BUSY"),
    "machine": {
        "ST_IDLE": (
            ("EV_PING", ac_ping, None),
            ("EV_DATA", ac_data, None),
            ("EV_COUNT", ac_count, None),
            ("EV_SLOW", ac_slow, None),
            ("EV_BOOM", ac_boom, None),
            ("EV_FLAKY", ac_flaky, None),
            ("EV_MAKE_TICK", ac_tick, None),
            ("EV_TICK", ac_record, None),
            ("EV_REMOTE_CONNECTED", ac_record, None),
            ("EV_REMOTE_DISCONNECTED", ac_record, None),
            ("EV_REMOTE_CLOSED", ac_record, None),
            ("EV_REMOTE_ERROR", ac_record, None),
        ),
        "ST_BUSY": (("EV_ONLY_BUSY", ac_record, None),),
    },
}


class Recorder(GObj):
    """Records what it gets; answers EV_PING; counts EV_DATA in order."""

    def __init__(self) -> None:
        GObj.__init__(self, RECORDER_FSM)
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.lock = threading.Lock()
        self.count = 0
        self.last_n = -1
        self.out_of_order = 0
        self.flaky_calls = 0

    def named(self, name: str) -> list[dict[str, Any]]:
        with self.lock:
            return [kw for ev, kw in self.events if ev == name]


def make_app(
    name: str,
    url: str | list[str],
    roles: tuple[str, ...] = (),
    gaplic_kw: dict[str, Any] | None = None,
    **remote: Any,
) -> tuple[GAplic, Recorder, GRemote]:
    """A GAplic with a unique Recorder ``rec`` and a GRemote ``router`` reporting to it."""
    gaplic = GAplic(name, roles=roles, **(gaplic_kw or {}))
    rec = gaplic.create_gobj("rec", Recorder, None, __unique_name__=True)
    servers = [url] if isinstance(url, str) else url
    remote.setdefault("reconnect_time_wait", 0.1)
    router = gaplic.create_gobj("router", GRemote, None, servers=servers, subscriber=rec, **remote)
    return gaplic, rec, router


class Running:
    """A GAplic running in a thread; ``call(fn)`` runs ``fn()`` on its loop."""

    def __init__(self, gaplic: GAplic) -> None:
        self.gaplic = gaplic
        self.worker = setup_gaplic_thread(gaplic)
        self.worker.start()

    def call(self, fn: Callable[[], Any], timeout: float = 10.0) -> Any:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(exc)

        self.gaplic.add_callback(run)
        return future.result(timeout)

    def stop(self) -> None:
        self.worker.stop(15.0)
        assert not self.worker.is_alive(), "the GAplic thread did not stop"
        self.gaplic.close()


def wait_until(cond: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout} s: {what}")
        time.sleep(0.005)


def main(argv: list[str]) -> int:
    """A peer process: ``python -m tests.remote.apps URL NAME [ROLE] [uvloop|asyncio]``.

    Prints ``READY`` once connected (subscriptions confirmed) and runs until SIGTERM.
    """
    url, name = argv[0], argv[1]
    roles = (argv[2],) if len(argv) > 2 and argv[2] else ()
    use_uvloop = len(argv) <= 3 or argv[3] != "asyncio"
    gaplic, _rec, router = make_app(name, url, roles, {"use_uvloop": use_uvloop})

    def announce(event: Any = None) -> None:
        print("READY", flush=True)

    class Announcer(GObj):
        def __init__(self) -> None:
            GObj.__init__(
                self,
                {
                    "event_list": ("EV_REMOTE_CONNECTED: bottom input",),
                    "state_list": ("ST_IDLE",),
                    "machine": {"ST_IDLE": (("EV_REMOTE_CONNECTED", _announce, None),)},
                },
            )

    def _announce(self: GObj, event: Event) -> None:
        announce()

    ann = gaplic.create_gobj("announcer", Announcer, None)
    router.subscribe_event("EV_REMOTE_CONNECTED", ann)
    try:
        gaplic.start()
    finally:
        gaplic.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
