"""Instructions per operation of the in-process hot paths, counted by valgrind (callgrind).

On a shared machine CPU time moves by 20 % from one run to the next; the number of
instructions an operation executes does not.  Each benchmark runs twice under
``valgrind --tool=callgrind`` (``n`` and ``2 n`` operations after the same set-up), and the
difference of the two totals divided by ``n`` is the cost of one operation: the set-up,
the imports and the interpreter's start cancel out.

    python -m benchmarks.instr [--n 20000] [--only echo]

Run it once as it is (the compiled build, when built) and once with
``FSMIO_NO_EXTENSIONS=1`` (the pure-Python modules) to compare the builds.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from typing import Any

BENCHES = ("send_event", "send_event_kw", "broadcast", "post_event", "echo", "create")


def _setup(bench: str) -> tuple[Callable[[int], None], Any]:
    """The body of ``bench`` (run with a count), and what must stay alive meanwhile."""
    from benchmarks.micro import Counter, Publisher, Small, Toggle, _FakeTransport
    from fsmio import GAplic, GObj

    ga = GAplic("instr")
    ga._loop()
    if bench in ("send_event", "send_event_kw"):
        dst = ga.create_gobj("dst", Toggle, None)
        src = ga.create_gobj("src", Toggle, None)
        send = src.send_event
        if bench == "send_event":

            def body(k: int) -> None:
                for _ in range(k):
                    send(dst, "EV_TOGGLE")
        else:

            def body(k: int) -> None:
                for _ in range(k):
                    send(dst, "EV_TOGGLE", data=b"x", n=1)

        return body, ga
    if bench == "broadcast":
        pub = ga.create_gobj("pub", Publisher, None)
        pub.subscribe_event("EV_OUT", ga.create_gobj("c", Counter, None))
        broadcast = pub.broadcast_event

        def body(k: int) -> None:
            for _ in range(k):
                broadcast("EV_OUT", data=b"x")

        return body, ga
    if bench == "post_event":
        dst = ga.create_gobj("dst", Toggle, None)
        src = ga.create_gobj("src", Toggle, None)
        post = src.post_event
        run_pending = ga._run_pending

        def body(k: int) -> None:
            for sent in range(0, k, 100):
                for _ in range(min(100, k - sent)):
                    post(dst, "EV_TOGGLE", data=b"x")
                run_pending()

        return body, ga
    if bench == "create":
        parent = ga.create_gobj("parent", Toggle, None)
        create = ga.create_gobj
        destroy = GObj.destroy_gobj

        def body(k: int) -> None:
            for _ in range(k):
                destroy(create("child", Small, parent, host="localhost", port=8080))

        return body, ga
    if bench == "echo":
        from benchmarks.fsmio_echo import Echo
        from fsmio.gobjs.c_sock import GSock

        echo = ga.create_gobj("echo", Echo, None)
        gsock = ga.create_gobj("conn", GSock, echo)
        gsock._prepare_accepted(None)
        gsock.connection_made(_FakeTransport())
        for _ in range(5):
            ga._loop()
        received = gsock.data_received
        data = b"x" * 64

        def body(k: int) -> None:
            for _ in range(k):
                received(data)

        return body, ga
    raise SystemExit(f"unknown benchmark {bench!r}; one of {', '.join(BENCHES)}")


def _child(bench: str, n: int) -> int:
    body, keep = _setup(bench)
    body(200)  # warm: caches, free lists, specialised bytecode
    body(n)
    del keep
    return 0


def _instructions(bench: str, n: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                sys.executable,
                "-m",
                "benchmarks.instr",
                "--child",
                bench,
                str(n),
            ],
            check=True,
            # The same string hashes in every run: dict probes repeat exactly.
            env={**os.environ, "PYTHONHASHSEED": "0"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        with open(out) as f:
            text = f.read()
    match = re.search(r"^summary:\s+(\d+)", text, re.M) or re.search(
        r"^totals:\s+(\d+)", text, re.M
    )
    if match is None:
        raise RuntimeError("no instruction total in the callgrind output")
    return int(match.group(1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--only", action="append", choices=BENCHES)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(args.child[0], int(args.child[1]))
    try:
        from fsmio._compiled import build_info
    except ImportError:  # a tree from before the compiled build (to compare with)
        print("build: pure Python (fsmio without fsmio._compiled)")
    else:
        print(f"build: {build_info()}")
    for bench in args.only or BENCHES:
        one = _instructions(bench, args.n)
        two = _instructions(bench, 2 * args.n)
        print(f"{bench:16s} {(two - one) / args.n:10.0f} instructions per operation", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
