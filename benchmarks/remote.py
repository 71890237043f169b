"""Remote events over NATS: fsmio (GRemote) beside raw nats-py, in the same run.

    python -m benchmarks.remote [--seconds 3] [--events 100000] [--loop uvloop|asyncio]

Starts its own nats-server (127.0.0.1, a free port).  For each implementation (raw
nats-py, then fsmio) a *responder* process and a *requester* process run three phases:

* request/reply, one at a time, for ``--seconds``: round trips/s, p50/p99 latency;
* request/reply, 16 outstanding, for ``--seconds``;
* one-way: ``--events`` events of about 64 bytes of JSON, then a count request until all
  arrived: delivered events/s.

and the requester's CPU seconds per 100 000 events of each phase (``time.process_time``),
and the responder's CPU for the whole run (``/proc``).  fsmio's requester sends with
``send_event_outside`` (``__subscribe_response__`` for the requests) from a gobj's
actions; its responder is a GAplic whose gobj answers.  Ratios fsmio/raw are printed at
the end; the machine is shared, so compare ratios of one run, not absolute rates.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, cast

from benchmarks.common import cpu_seconds

CONCURRENT = 16
PAD = "x" * 40  # {"n":12345,"pad":"xxx..."}: about 64 bytes


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def new_loop(name: str) -> asyncio.AbstractEventLoop:
    if name == "uvloop":
        import uvloop

        # uvloop's stubs type its loop loosely; it is an AbstractEventLoop (as in GAplic).
        return cast(asyncio.AbstractEventLoop, uvloop.new_event_loop())
    return asyncio.new_event_loop()


# ----------------------------------------------------------------------------------------
#   raw nats-py
# ----------------------------------------------------------------------------------------
async def raw_responder(url: str) -> None:
    import nats

    nc = await nats.connect(url)
    count = 0

    async def on_req(msg: Any) -> None:
        await msg.respond(msg.data)

    async def on_data(msg: Any) -> None:
        nonlocal count
        json.loads(msg.data)
        count += 1

    async def on_count(msg: Any) -> None:
        await msg.respond(json.dumps({"count": count}).encode())

    await nc.subscribe("bench.req", cb=on_req)
    await nc.subscribe("bench.data", cb=on_data)
    await nc.subscribe("bench.count", cb=on_count)
    await asyncio.sleep(0)
    await nc.flush()
    print("READY", flush=True)
    await asyncio.Event().wait()


async def raw_requester(url: str, seconds: float, events: int) -> dict[str, Any]:
    import nats

    nc = await nats.connect(url, pending_size=8 * 1024 * 1024)
    results: dict[str, Any] = {}

    async def rr(concurrency: int) -> dict[str, Any]:
        latencies: list[float] = []
        cpu0, end = time.process_time(), time.perf_counter() + seconds

        async def one_worker() -> None:
            n = 0
            while time.perf_counter() < end:
                n += 1
                t0 = time.perf_counter()
                await nc.request("bench.req", json.dumps({"n": n}).encode(), timeout=5)
                latencies.append(time.perf_counter() - t0)

        t0 = time.perf_counter()
        await asyncio.gather(*(one_worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
        return _rr_result(latencies, elapsed, time.process_time() - cpu0)

    results["rr1"] = await rr(1)
    results["rr16"] = await rr(CONCURRENT)
    cpu0, t0 = time.process_time(), time.perf_counter()
    for n in range(events):
        await nc.publish("bench.data", json.dumps({"n": n, "pad": PAD}).encode())
    send_cpu = time.process_time() - cpu0
    while True:
        msg = await nc.request("bench.count", b"", timeout=10)
        if json.loads(msg.data)["count"] >= events:
            break
        await asyncio.sleep(0.005)
    results["pub"] = _pub_result(
        events, time.perf_counter() - t0, time.process_time() - cpu0, send_cpu
    )
    await nc.close()
    return results


def _rr_result(latencies: list[float], elapsed: float, cpu: float) -> dict[str, Any]:
    count = len(latencies)
    return {
        "count": count,
        "rate": count / elapsed if elapsed else 0.0,
        "p50_us": percentile(latencies, 0.5) * 1e6,
        "p99_us": percentile(latencies, 0.99) * 1e6,
        "cpu_per_100k": cpu / count * 100_000 if count else 0.0,
    }


def _pub_result(events: int, elapsed: float, cpu: float, send_cpu: float) -> dict[str, Any]:
    return {
        "count": events,
        "rate": events / elapsed if elapsed else 0.0,
        "cpu_per_100k": cpu / events * 100_000 if events else 0.0,
        "send_cpu_per_100k": send_cpu / events * 100_000 if events else 0.0,
    }


# ----------------------------------------------------------------------------------------
#   fsmio
# ----------------------------------------------------------------------------------------
def fsmio_responder(url: str, loop: str) -> None:
    from fsmio import GAplic, GObj
    from fsmio.core.event import Event
    from fsmio.remote import GRemote

    def ac_ping(self: Any, event: Event) -> Any:
        return event.kw.get("n")

    def ac_data(self: Any, event: Event) -> None:
        self.count += 1

    def ac_count(self: Any, event: Event) -> Any:
        return {"count": self.count}

    def ac_connected(self: Any, event: Event) -> None:
        print("READY", flush=True)

    class Responder(GObj):
        def __init__(self) -> None:
            GObj.__init__(
                self,
                {
                    "event_list": (
                        "EV_PING: top input",
                        "EV_DATA: top input",
                        "EV_COUNT: top input",
                        "EV_REMOTE_CONNECTED: bottom input",
                    ),
                    "state_list": ("ST_IDLE",),
                    "machine": {
                        "ST_IDLE": (
                            ("EV_PING", ac_ping, None),
                            ("EV_DATA", ac_data, None),
                            ("EV_COUNT", ac_count, None),
                            ("EV_REMOTE_CONNECTED", ac_connected, None),
                        )
                    },
                },
            )
            self.count = 0

    gaplic = GAplic("responder", use_uvloop=loop == "uvloop")
    rec = gaplic.create_gobj("rec", Responder, None, __unique_name__=True)
    router = gaplic.create_gobj("router", GRemote, None, servers=[url])
    router.subscribe_event("EV_REMOTE_CONNECTED", rec)
    try:
        gaplic.start()
    finally:
        gaplic.close()


def fsmio_requester(url: str, seconds: float, events: int, loop: str) -> dict[str, Any]:
    from fsmio import GAplic, GObj
    from fsmio.core.event import Event
    from fsmio.remote import GRemote

    results: dict[str, Any] = {}

    class Driver(GObj):
        def __init__(self) -> None:
            GObj.__init__(
                self,
                {
                    "event_list": (
                        "EV_REMOTE_CONNECTED: bottom input",
                        "EV_PING: bottom input",
                        "EV_COUNT: bottom input",
                    ),
                    "state_list": ("ST_IDLE",),
                    "machine": {
                        "ST_IDLE": (
                            ("EV_REMOTE_CONNECTED", lambda s, e: s.start_rr(1), None),
                            ("EV_PING", lambda s, e: s.on_pong(e), None),
                            ("EV_COUNT", lambda s, e: s.on_count(e), None),
                        )
                    },
                },
            )
            self.sent_at: dict[int, float] = {}
            self.latencies: list[float] = []
            self.n = 0

        def ping(self) -> None:
            self.n += 1
            self.sent_at[self.n] = time.perf_counter()
            self.gaplic.send_event_outside(
                "responder", "", "rec", "EV_PING", self, n=self.n, __subscribe_response__=True
            )

        def start_rr(self, concurrency: int) -> None:
            self.concurrency = concurrency
            self.latencies = []
            self.end = time.perf_counter() + seconds
            self.cpu0, self.t0 = time.process_time(), time.perf_counter()
            for _ in range(concurrency):
                self.ping()

        def on_pong(self, event: Event) -> None:
            assert event.kw["__error__"] is None, event.kw
            n = event.kw["__action_return__"]
            self.latencies.append(time.perf_counter() - self.sent_at.pop(n))
            if time.perf_counter() < self.end:
                self.ping()
            elif not self.sent_at:
                elapsed = time.perf_counter() - self.t0
                cpu = time.process_time() - self.cpu0
                results[f"rr{self.concurrency}"] = _rr_result(self.latencies, elapsed, cpu)
                if self.concurrency == 1:
                    self.start_rr(CONCURRENT)
                else:
                    self.start_pub()

        def start_pub(self) -> None:
            self.cpu0, self.t0 = time.process_time(), time.perf_counter()
            self.published = 0
            self.send_cpu = 0.0
            self.publish_some()

        def publish_some(self) -> None:
            # In slices, so that nats-py's flusher runs between them (bounded buffer).
            cpu0 = time.process_time()
            send = self.gaplic.send_event_outside
            stop = min(events, self.published + 2000)
            for n in range(self.published, stop):
                send("responder", "", "rec", "EV_DATA", self, n=n, pad=PAD)
            self.published = stop
            self.send_cpu += time.process_time() - cpu0
            if stop < events:
                self.gaplic.add_callback(self.publish_some)
            else:
                self.ask_count()

        def ask_count(self) -> None:
            self.gaplic.send_event_outside(
                "responder", "", "rec", "EV_COUNT", self, __subscribe_response__=True
            )

        def on_count(self, event: Event) -> None:
            if event.kw["__action_return__"]["count"] >= events:
                elapsed = time.perf_counter() - self.t0
                cpu = time.process_time() - self.cpu0
                results["pub"] = _pub_result(events, elapsed, cpu, self.send_cpu)
                self.gaplic.stop()
            else:
                # Polled every 5 ms, as the raw requester does: the CPU of the phase then
                # counts the same polling for both.
                self.gaplic.call_at(self.gaplic.time() + 0.005, self.ask_count)

    gaplic = GAplic("requester", use_uvloop=loop == "uvloop")
    driver = gaplic.create_gobj("driver", Driver, None, __unique_name__=True)
    router = gaplic.create_gobj("router", GRemote, None, servers=[url], request_timeout=10)
    router.subscribe_event("EV_REMOTE_CONNECTED", driver)
    try:
        gaplic.start()
    finally:
        gaplic.close()
    return results


# ----------------------------------------------------------------------------------------
#   The run
# ----------------------------------------------------------------------------------------
def child(args: argparse.Namespace) -> int:
    if args.child == "responder":
        if args.impl == "raw":
            new_loop(args.loop).run_until_complete(raw_responder(args.url))
        else:
            fsmio_responder(args.url, args.loop)
        return 0
    if args.impl == "raw":
        loop = new_loop(args.loop)
        try:
            results = loop.run_until_complete(raw_requester(args.url, args.seconds, args.events))
        finally:
            loop.close()
    else:
        results = fsmio_requester(args.url, args.seconds, args.events, args.loop)
    print(json.dumps(results), flush=True)
    return 0


def run_impl(impl: str, url: str, args: argparse.Namespace) -> dict[str, Any]:
    base = [sys.executable, "-m", "benchmarks.remote", "--url", url, "--impl", impl]
    base += ["--loop", args.loop, "--seconds", str(args.seconds), "--events", str(args.events)]
    responder = subprocess.Popen([*base, "--child", "responder"], stdout=subprocess.PIPE, text=True)
    try:
        assert responder.stdout is not None
        line = responder.stdout.readline()
        if line.strip() != "READY":
            raise SystemExit(f"{impl} responder did not start: {line!r}")
        cpu0 = cpu_seconds(responder.pid)
        out = subprocess.run(
            [*base, "--child", "requester"], capture_output=True, text=True, timeout=600
        )
        if out.returncode != 0:
            raise SystemExit(f"{impl} requester failed: {out.stderr[-2000:]}")
        results: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        results["responder_cpu"] = cpu_seconds(responder.pid) - cpu0
        return results
    finally:
        responder.terminate()
        responder.wait(20)
        if responder.stdout is not None:
            responder.stdout.close()


def table(all_results: dict[str, dict[str, Any]]) -> str:
    raw, fsm = all_results["raw"], all_results["fsmio"]
    lines = [
        "| phase | impl | rate /s | p50 µs | p99 µs | client CPU s per 100k |",
        "|---|---|---|---|---|---|",
    ]
    names = {"rr1": "request/reply, 1", "rr16": f"request/reply, {CONCURRENT}", "pub": "one-way"}
    for phase, label in names.items():
        for impl, res in (("nats-py", raw), ("fsmio", fsm)):
            r = res[phase]
            p50 = f"{r['p50_us']:.0f}" if "p50_us" in r else "-"
            p99 = f"{r['p99_us']:.0f}" if "p99_us" in r else "-"
            lines.append(
                f"| {label} | {impl} | {r['rate']:,.0f} | {p50} | {p99} | {r['cpu_per_100k']:.2f} |"
            )
    lines.append("")
    lines.append("| phase | fsmio/nats-py rate | fsmio/nats-py client CPU per event |")
    lines.append("|---|---|---|")
    for phase, label in names.items():
        rate = fsm[phase]["rate"] / raw[phase]["rate"] if raw[phase]["rate"] else 0.0
        cpu = (
            fsm[phase]["cpu_per_100k"] / raw[phase]["cpu_per_100k"]
            if raw[phase]["cpu_per_100k"]
            else 0.0
        )
        lines.append(f"| {label} | {rate:.2f} | {cpu:.2f} |")
    send_raw, send_fsm = raw["pub"]["send_cpu_per_100k"], fsm["pub"]["send_cpu_per_100k"]
    lines.append(
        f"| one-way, the sends alone | | {send_fsm / send_raw if send_raw else 0.0:.2f} "
        f"({send_fsm:.2f} / {send_raw:.2f} s per 100k) |"
    )
    lines.append("")
    lines.append(
        f"Responder CPU for the whole run: nats-py {raw['responder_cpu']:.2f} s, "
        f"fsmio {fsm['responder_cpu']:.2f} s."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    parser.add_argument("--out", help="also write the Markdown table there")
    parser.add_argument("--child", choices=("responder", "requester"), help=argparse.SUPPRESS)
    parser.add_argument("--impl", choices=("raw", "fsmio"), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args)
    from fsmio.examples.inter_event import start_nats_server

    with tempfile.TemporaryDirectory(prefix="fsmio-bench-nats-") as tmp:
        server, url = start_nats_server(Path(tmp))
        try:
            results = {impl: run_impl(impl, url, args) for impl in ("raw", "fsmio")}
        finally:
            server.terminate()
            server.wait(10)
    text = (
        f"Remote events, {args.loop}, {args.seconds:g} s per request phase, "
        f"{args.events} one-way events; {os.cpu_count()} cores.\n\n" + table(results)
    )
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
        Path(args.out).with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
