"""In-process micro-benchmarks: event dispatch, the queue, gobj life cycle, GTimers.

Each benchmark runs ``repeat`` rounds of ``n`` operations and keeps every round's rate, so
the table can show the best one (the least disturbed by a noisy machine) and the spread.
Rates are per CPU-second of the benchmark process (``time.process_time``), so time during
which another process had the CPU does not count; the lateness of timers is wall-clock.
Where automat or transitions do the same thing (a two-state toggle, creating a machine)
they run side by side in the same process; a peer that is not installed is reported as
"not installed".

    python -m benchmarks.micro [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fsmio import GAplic, GObj, GTimer
from fsmio.core.event import Event

#: Rates are per CPU-second of this process, not per wall-clock second: on a shared
#: machine a round during which another process ran would otherwise look slow.
cpu_clock = time.process_time

# ----------------------------------------------------------------------------------------
#   Results
# ----------------------------------------------------------------------------------------


@dataclass
class Micro:
    """One micro-benchmark row: ``rates`` holds one rate (operations/s) per round."""

    bench: str
    impl: str
    unit: str = "ops/s"
    rates: list[float] = field(default_factory=list)
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def best(self) -> float:
        return max(self.rates) if self.rates else 0.0

    @property
    def median(self) -> float:
        return statistics.median(self.rates) if self.rates else 0.0


def _rounds(n: int, repeat: int, body: Callable[[int], None]) -> list[float]:
    """Run ``body(n)`` ``repeat`` times; the rate of each round (n / seconds)."""
    rates = []
    for _ in range(repeat):
        gc.collect()
        t0 = cpu_clock()
        body(n)
        elapsed = cpu_clock() - t0
        rates.append(n / elapsed if elapsed > 0 else 0.0)
    return rates


# ----------------------------------------------------------------------------------------
#   fsmio gclasses used by the benchmarks
# ----------------------------------------------------------------------------------------
def ac_on(self: Toggle, event: Event) -> None:
    self.count += 1


def ac_off(self: Toggle, event: Event) -> None:
    self.count += 1


TOGGLE_FSM: dict[str, Any] = {
    "event_list": ("EV_TOGGLE: top input",),
    "state_list": ("ST_OFF", "ST_ON"),
    "machine": {
        "ST_OFF": (("EV_TOGGLE", ac_on, "ST_ON"),),
        "ST_ON": (("EV_TOGGLE", ac_off, "ST_OFF"),),
    },
}


class Toggle(GObj):
    """Two states; EV_TOGGLE flips them and counts."""

    def __init__(self) -> None:
        GObj.__init__(self, TOGGLE_FSM)
        self.count = 0


def ac_count(self: Counter, event: Event) -> None:
    self.count += 1


def ac_timeout(self: Counter, event: Event) -> None:
    self.count += 1
    self.lateness.append(self.gaplic.time() - self.deadlines[event.source[-1]])
    if self.count >= self.expected:
        self.gaplic.stop()


COUNTER_FSM: dict[str, Any] = {
    "event_list": ("EV_OUT: top input", "EV_TIMEOUT: top input"),
    "state_list": ("ST_IDLE",),
    "machine": {"ST_IDLE": (("EV_OUT", ac_count, None), ("EV_TIMEOUT", ac_timeout, None))},
}


class Counter(GObj):
    """Counts the events it gets (EV_OUT from a publisher, EV_TIMEOUT from GTimers)."""

    def __init__(self) -> None:
        GObj.__init__(self, COUNTER_FSM)
        self.count = 0
        self.expected = 0
        self.deadlines: dict[Any, float] = {}
        self.lateness: list[float] = []


PUBLISHER_FSM: dict[str, Any] = {
    "event_list": ("EV_OUT: top output",),
    "state_list": ("ST_IDLE",),
    "machine": {"ST_IDLE": ()},
}


class Publisher(GObj):
    """Declares one output event, EV_OUT."""

    def __init__(self) -> None:
        GObj.__init__(self, PUBLISHER_FSM)


SMALL_GCONFIG: dict[str, list[Any]] = {
    "host": [str, "", 0, None, "A str parameter."],
    "port": [int, 0, 0, None, "An int parameter."],
}


class Small(GObj):
    """A gobj with two parameters, for create/destroy."""

    def __init__(self) -> None:
        GObj.__init__(self, TOGGLE_FSM, SMALL_GCONFIG)
        self.count = 0


# ----------------------------------------------------------------------------------------
#   Peers: automat and transitions (optional)
# ----------------------------------------------------------------------------------------
def _automat_methodical() -> Callable[[], Any] | None:
    try:
        import automat
    except ImportError:
        return None

    # automat's MethodicalMachine API is untyped: its decorators need the ignores below.
    class Light:
        machine = automat.MethodicalMachine()  # type: ignore[no-untyped-call]

        def __init__(self) -> None:
            self.count = 0

        @machine.state(initial=True)  # type: ignore[misc, untyped-decorator, unused-ignore]
        def off(self) -> None:
            "Off."

        @machine.state()  # type: ignore[misc, untyped-decorator, unused-ignore]
        def on(self) -> None:
            "On."

        @machine.input()  # type: ignore[misc, untyped-decorator, unused-ignore]
        def toggle(self, data: Any = None, n: int = 0) -> None:
            "Flip."

        @machine.output()  # type: ignore[misc, untyped-decorator, unused-ignore]
        def act(self, data: Any = None, n: int = 0) -> None:
            self.count += 1

        off.upon(toggle, enter=on, outputs=[act])
        on.upon(toggle, enter=off, outputs=[act])

    return Light


def _automat_typed() -> Callable[[], Any] | None:
    try:
        from typing import Protocol

        from automat import TypeMachineBuilder
    except ImportError:
        return None

    class Switch(Protocol):
        def toggle(self, data: Any = None, n: int = 0) -> None:
            "Flip."

    class Core:
        def __init__(self) -> None:
            self.count = 0

    builder = TypeMachineBuilder(Switch, Core)
    off = builder.state("off")
    on = builder.state("on")

    @off.upon(Switch.toggle).to(on)
    def _turn_on(switch: Switch, core: Core, data: Any = None, n: int = 0) -> None:
        core.count += 1

    @on.upon(Switch.toggle).to(off)
    def _turn_off(switch: Switch, core: Core, data: Any = None, n: int = 0) -> None:
        core.count += 1

    factory = builder.build()
    return lambda: factory(Core())


def _transitions() -> Callable[[], Any] | None:
    try:
        from transitions import Machine
    except ImportError:
        return None

    class Model:
        def __init__(self) -> None:
            self.count = 0

        def act(self, data: Any = None, n: int = 0) -> None:
            self.count += 1

    def make() -> Any:
        model = Model()
        Machine(
            model,
            states=["off", "on"],
            transitions=[
                {"trigger": "toggle", "source": "off", "dest": "on", "after": "act"},
                {"trigger": "toggle", "source": "on", "dest": "off", "after": "act"},
            ],
            initial="off",
            auto_transitions=False,
        )
        return model

    return make


PEERS: dict[str, Callable[[], Callable[[], Any] | None]] = {
    "automat (MethodicalMachine)": _automat_methodical,
    "automat (TypeMachine)": _automat_typed,
    "transitions": _transitions,
}


# ----------------------------------------------------------------------------------------
#   The benchmarks
# ----------------------------------------------------------------------------------------
def bench_toggle(n: int, repeat: int) -> list[Micro]:
    """send_event on a two-state toggle, without and with kw; the peers' toggle."""
    out: list[Micro] = []
    with GAplic("bench-toggle") as ga:
        dst = ga.create_gobj("dst", Toggle, None)
        src = ga.create_gobj("src", Toggle, None)
        send = src.send_event

        def plain(k: int) -> None:
            for _ in range(k):
                send(dst, "EV_TOGGLE")

        def with_kw(k: int) -> None:
            for _ in range(k):
                send(dst, "EV_TOGGLE", data=b"x", n=1)

        out.append(Micro("toggle", "fsmio send_event", "events/s", _rounds(n, repeat, plain)))
        out.append(
            Micro("toggle + kw", "fsmio send_event", "events/s", _rounds(n, repeat, with_kw))
        )
        if dst.count != 2 * n * repeat:  # pragma: no cover - a broken dispatch
            raise RuntimeError(f"toggle: {dst.count} actions run, expected {2 * n * repeat}")
    for name, factory_maker in PEERS.items():
        factory = factory_maker()
        for bench, kw in (("toggle", False), ("toggle + kw", True)):
            if factory is None:
                out.append(Micro(bench, name, "events/s", note="not installed"))
                continue
            machine = factory()
            toggle = machine.toggle
            peer_n = n if "transitions" not in name else max(1, n // 10)

            def peer(k: int, toggle: Any = toggle, kw: bool = kw) -> None:
                if kw:
                    for _ in range(k):
                        toggle(data=b"x", n=1)
                else:
                    for _ in range(k):
                        toggle()

            out.append(Micro(bench, name, "events/s", _rounds(peer_n, repeat, peer)))
    return out


def bench_broadcast(n: int, repeat: int) -> list[Micro]:
    """broadcast_event of one output event to 1 and to 10 subscribers (deliveries/s)."""
    out: list[Micro] = []
    for subscribers in (1, 10):
        with GAplic("bench-broadcast") as ga:
            pub = ga.create_gobj("pub", Publisher, None)
            counters = [ga.create_gobj(f"c{i}", Counter, None) for i in range(subscribers)]
            for counter in counters:
                pub.subscribe_event("EV_OUT", counter)
            broadcast = pub.broadcast_event
            k_n = max(1, n // subscribers)

            def body(k: int, broadcast: Any = broadcast) -> None:
                for _ in range(k):
                    broadcast("EV_OUT", data=b"x")

            rates = [r * subscribers for r in _rounds(k_n, repeat, body)]
            if sum(c.count for c in counters) != k_n * repeat * subscribers:
                raise RuntimeError("broadcast: deliveries lost")  # pragma: no cover
            out.append(
                Micro(
                    f"broadcast_event to {subscribers}",
                    "fsmio",
                    "deliveries/s",
                    rates,
                )
            )
    return out


def bench_post(n: int, repeat: int) -> list[Micro]:
    """post_event through the GAplic queue: queued then drained, posts + deliveries."""
    out: list[Micro] = []
    with GAplic("bench-post") as ga:
        dst = ga.create_gobj("dst", Toggle, None)
        src = ga.create_gobj("src", Toggle, None)
        post = src.post_event

        def drained_by_loop(k: int) -> None:
            # Batches of 1000 (like the running-loop case): a program's queue holds what
            # one iteration produced, not a whole benchmark's worth of events.
            start = dst.count
            for sent in range(0, k, 1000):
                for _ in range(min(1000, k - sent)):
                    post(dst, "EV_TOGGLE", data=b"x")
                ga._loop()
            for _ in range(1000):
                if dst.count - start >= k:
                    break
                ga._loop()
            if dst.count - start != k:
                raise RuntimeError("post_event: events lost")  # pragma: no cover

        out.append(
            Micro(
                "post_event (drained by _loop)",
                "fsmio",
                "events/s",
                _rounds(n, repeat, drained_by_loop),
            )
        )

    batch = 1000

    async def running(ga: GAplic, dst: Toggle, src: Toggle, k: int) -> None:
        post = src.post_event
        start = dst.count
        for sent in range(0, k, batch):
            for _ in range(min(batch, k - sent)):
                post(dst, "EV_TOGGLE", data=b"x")
            await asyncio.sleep(0)
        for _ in range(1000):
            if dst.count - start >= k:
                break
            await asyncio.sleep(0)
        if dst.count - start != k:
            raise RuntimeError("post_event: events lost")  # pragma: no cover
        ga.stop()

    for loop_name, use_uvloop in (("uvloop", True), ("asyncio", False)):
        rates: list[float] = []
        with GAplic("bench-post-run", use_uvloop=use_uvloop) as ga:
            dst = ga.create_gobj("dst", Toggle, None)
            src = ga.create_gobj("src", Toggle, None)
            loop = ga.new_event_loop()
            try:
                for _ in range(repeat):
                    gc.collect()

                    async def main(dst: Toggle = dst, src: Toggle = src) -> None:
                        runner = asyncio.ensure_future(ga.run())
                        await running(ga, dst, src, n)
                        await runner

                    t0 = cpu_clock()
                    loop.run_until_complete(main())
                    rates.append(n / (cpu_clock() - t0))
            finally:
                loop.close()
        out.append(Micro(f"post_event (running {loop_name} loop)", "fsmio", "events/s", rates))
    return out


def bench_create(n: int, repeat: int) -> list[Micro]:
    """create_gobj + destroy_gobj of a child with two parameters; the peers' constructors."""
    out: list[Micro] = []
    with GAplic("bench-create") as ga:
        parent = ga.create_gobj("parent", Toggle, None)
        create = ga.create_gobj
        destroy = GObj.destroy_gobj

        def body(k: int) -> None:
            for _ in range(k):
                destroy(create("child", Small, parent, host="localhost", port=8080))

        out.append(
            Micro("create_gobj + destroy_gobj", "fsmio", "gobjs/s", _rounds(n, repeat, body))
        )
    for name, factory_maker in PEERS.items():
        factory = factory_maker()
        if factory is None:
            out.append(Micro("create a machine", name, "machines/s", note="not installed"))
            continue
        peer_n = n if "transitions" not in name else max(1, n // 10)

        def peer(k: int, factory: Callable[[], Any] = factory) -> None:
            for _ in range(k):
                factory()

        out.append(Micro("create a machine", name, "machines/s", _rounds(peer_n, repeat, peer)))
    return out


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def bench_timers(n: int, spread: float = 1.0, delay: float = 3.0) -> list[Micro]:
    """``n`` armed GTimers: memory per timer (gobj + armed handle) and lateness of firing.

    The deadlines are spread evenly over ``spread`` seconds starting ``delay`` seconds
    after arming began, so n/spread timers fall due per second.  Arming 100 000 takes about
    a second: each timer is armed with its deadline minus the time at its own arming (a
    GTimer counts ``seconds`` from when it gets ``EV_SET_TIMER``), and ``delay`` must
    outlast the arming.  Lateness is measured from that deadline: a preemption between
    the benchmark's clock read and the GTimer's counts as lateness (never flatters).
    """
    out: list[Micro] = []
    with GAplic("bench-timers") as ga:
        counter: Counter = ga.create_gobj("counter", Counter, None)
        counter.expected = n
        gc.collect()
        rss0 = _rss_bytes()
        t0 = cpu_clock()
        timers = [ga.create_gobj(None, GTimer, counter) for _ in range(n)]
        created = cpu_clock() - t0
        t0 = cpu_clock()
        clock = ga.time
        base = clock()
        for i, timer in enumerate(timers):
            deadline = base + delay + spread * i / n
            seconds = deadline - clock()
            if seconds <= 0:
                raise RuntimeError(
                    f"timers: arming {n} took more than the {delay} s delay; give a longer one"
                )
            counter.deadlines[timer] = deadline
            counter.send_event(timer, "EV_SET_TIMER", seconds=seconds)
        armed = cpu_clock() - t0
        gc.collect()
        rss1 = _rss_bytes()
        # The deadlines dict is the benchmark's own bookkeeping, not the timers' cost.
        deadlines_bytes = _dict_size(counter.deadlines)
        per_timer = (rss1 - rss0 - deadlines_bytes) / n
        ga.call_later(delay + spread + 30.0, ga.stop)  # a bound, should it hang
        t0, cpu0 = time.perf_counter(), cpu_clock()
        ga.start()
        ran, fire_cpu = time.perf_counter() - t0, cpu_clock() - cpu0
        lateness = sorted(counter.lateness)
        if counter.count != n:
            raise RuntimeError(f"timers: {counter.count} of {n} fired")  # pragma: no cover
    out.append(
        Micro(
            f"{n} armed GTimers",
            "fsmio",
            "timers",
            [float(n)],
            extra={
                "bytes_per_timer": per_timer,
                "create_per_s": n / created,
                "arm_per_s": n / armed,
                "late_p50_ms": 1000 * lateness[len(lateness) // 2],
                "late_p99_ms": 1000 * lateness[min(len(lateness) - 1, int(len(lateness) * 0.99))],
                "late_max_ms": 1000 * lateness[-1],
                "run_s": ran,
                # CPU from start() to the last expiry (waiting costs none unless the loop
                # spins): what firing the n timers cost.
                "fire_cpu_s": fire_cpu,
            },
        )
    )
    return out


def _dict_size(d: dict[Any, float]) -> int:
    import sys

    return sys.getsizeof(d) + sum(sys.getsizeof(v) for v in d.values())


class _FakeTransport(asyncio.Transport):
    """Takes every write and does nothing: the in-process echo path has no kernel."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, data: Any) -> None:
        self.writes += 1

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


class _RawEcho(asyncio.Protocol):
    transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


def bench_echo_path(n: int, repeat: int) -> list[Micro]:
    """One echoed message in-process, no kernel: ``data_received`` -> ``transport.write``.

    fsmio: a connected GSock (as a GServerSock makes it) whose user gobj echoes, every
    message EV_RX_DATA -> action -> EV_SEND_DATA, on a transport that drops the writes;
    beside a raw asyncio Protocol on the same transport.  The difference is the
    framework's CPU per message, without the noise of the network stack.
    """
    from benchmarks.fsmio_echo import Echo

    data = b"x" * 64
    out: list[Micro] = []
    try:
        from fsmio.gobjs.c_sock import GSock

        with GAplic("bench-echo-path") as ga:
            ga._loop()
            echo = ga.create_gobj("echo", Echo, None)
            gsock = ga.create_gobj("conn", GSock, echo)
            gsock._prepare_accepted(None)  # what a GServerSock does to an accepted child
            transport = _FakeTransport()
            gsock.connection_made(transport)
            for _ in range(5):
                ga._loop()
            if gsock.get_current_state() != "ST_CONNECTED":
                raise RuntimeError(f"GSock in {gsock.get_current_state()}")
            received = gsock.data_received

            def fsmio_body(k: int) -> None:
                for _ in range(k):
                    received(data)

            rates = _rounds(n, repeat, fsmio_body)
            if transport.writes != n * repeat:
                raise RuntimeError(f"{transport.writes} writes for {n * repeat} messages")
            out.append(Micro("echo path, in-process", "fsmio (GSock + gobj)", "msg/s", rates))
    except Exception as exc:  # GSock internals changed: say so, run the rest
        out.append(Micro("echo path, in-process", "fsmio (GSock + gobj)", note=f"n/a: {exc!r}"))
    raw = _RawEcho()
    raw.connection_made(_FakeTransport())
    raw_received = raw.data_received

    def raw_body(k: int) -> None:
        for _ in range(k):
            raw_received(data)

    out.append(
        Micro(
            "echo path, in-process", "raw asyncio Protocol", "msg/s", _rounds(n, repeat, raw_body)
        )
    )
    return out


def bench_gobj_memory(n: int) -> list[Micro]:
    """Bytes per idle gobj (a Toggle with a parent), from RSS."""
    with GAplic("bench-mem") as ga:
        parent = ga.create_gobj("parent", Toggle, None)
        gc.collect()
        rss0 = _rss_bytes()
        gobjs = [ga.create_gobj(None, Toggle, parent) for _ in range(n)]
        gc.collect()
        rss1 = _rss_bytes()
        per = (rss1 - rss0) / n
        del gobjs
    return [Micro(f"memory of {n} gobjs", "fsmio", "gobjs", [float(n)], extra={"bytes": per})]


# ----------------------------------------------------------------------------------------
#   Running them all
# ----------------------------------------------------------------------------------------
def run_all(
    quick: bool = False, log: Callable[[str], None] = print, only: str | None = None
) -> list[Micro]:
    """Every micro-benchmark; ``quick`` makes them tiny (a smoke test, not a measurement)."""
    if quick:
        n, repeat, timers, mem = 2000, 1, 500, 500
    else:
        n, repeat, timers, mem = 300_000, 5, 100_000, 20_000
    results: list[Micro] = []
    steps: list[tuple[str, Callable[[], list[Micro]]]] = [
        ("toggle", lambda: bench_toggle(n, repeat)),
        ("broadcast", lambda: bench_broadcast(n, repeat)),
        ("post", lambda: bench_post(n, repeat)),
        ("create", lambda: bench_create(max(1, n // 10), repeat)),
        ("echo path", lambda: bench_echo_path(max(1, n // 3), repeat)),
        ("gobj memory", lambda: bench_gobj_memory(mem)),
        (
            "timers",
            lambda: bench_timers(timers, spread=0.2 if quick else 1.0, delay=0.1 if quick else 3.0),
        ),
    ]
    for name, step in steps:
        if only and name != only:
            continue
        log(f"micro: {name} ...")
        results.extend(step())
    return results


def format_rate(rate: float) -> str:
    if rate >= 1e6:
        return f"{rate / 1e6:.2f} M"
    if rate >= 1e3:
        return f"{rate / 1e3:.1f} k"
    return f"{rate:.0f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny counts (a smoke test)")
    parser.add_argument("--only", help="run only this benchmark (toggle, post, ...)")
    args = parser.parse_args(argv)
    results = run_all(args.quick, only=args.only)
    for r in results:
        if r.note:
            print(f"{r.bench:34s} {r.impl:30s} {r.note}")
        elif r.extra:
            print(f"{r.bench:34s} {r.impl:30s} {r.extra}")
        else:
            spread = ", ".join(format_rate(x) for x in r.rates)
            print(
                f"{r.bench:34s} {r.impl:30s} best {format_rate(r.best)}{r.unit} (rounds: {spread})"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
