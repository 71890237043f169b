"""GWebSocket's client role against Autobahn|Testsuite's fuzzing server (not run in CI).

    python -m benchmarks.autobahn_client --wstest ~/.cache/anchors/venv-autobahn27/bin/wstest \\
        [--cases '*'] [--exclude '9.*,12.*,13.*'] [--compression] [--outdir DIR]

Starts ``wstest -m fuzzingserver`` on a free 127.0.0.1 port (stopped by PID at the end),
then, one case at a time, connects a client ``GWebSocket`` (over a plain GSock: one
connection per case, no reconnecting) to ``/runCase?case=N&agent=fsmio-client`` and echoes
every message until the server closes; finally asks for ``/updateReports`` and prints a
summary of ``reports/clients/index.json`` (counts per behaviour and the failed cases) as
one JSON line.  Exit status 1 if a case FAILED.  See docs/autobahn.md.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any

from fsmio import GAplic, GObj, GSock, GWebSocket
from fsmio.core.event import Event

AGENT = "fsmio-client"


def _on_message(self: Driver, event: Event) -> None:
    if self.path.startswith("/getCaseCount"):
        self.case_count = int(event.kw["data"])
    else:
        self.send_event(event.kw["ws"], "EV_SEND_MESSAGE", data=event.kw["data"])


def _on_close(self: Driver, event: Event) -> None:
    self.post_event(self, "EV_NEXT")


def _next(self: Driver, event: Event) -> None:
    for child in list(self):
        self.destroy_gobj(child)
    self.step()


def _ignore(self: Driver, event: Event) -> None:
    return None


DRIVER_FSM: dict[str, Any] = {
    "event_list": (
        "EV_ON_OPEN: bottom input",
        "EV_ON_MESSAGE: bottom input",
        "EV_ON_CLOSE: bottom input",
        "EV_NEXT: bottom input",
    ),
    "state_list": ("ST_RUNNING",),
    "machine": {
        "ST_RUNNING": (
            ("EV_ON_OPEN", _ignore, None),
            ("EV_ON_MESSAGE", _on_message, None),
            ("EV_ON_CLOSE", _on_close, None),
            ("EV_NEXT", _next, None),
        )
    },
}


class Driver(GObj):
    """Runs the cases one connection at a time."""

    def __init__(self) -> None:
        GObj.__init__(self, DRIVER_FSM)
        self.port = 0
        self.compression: str | None = None
        self.case_count = -1
        self.case = 0
        self.path = ""
        self.done = False

    def connect(self, path: str) -> None:
        self.path = path
        gsock = self.create_gobj(None, GSock, self, host="127.0.0.1", port=self.port)
        self.create_gobj(
            None,
            GWebSocket,
            self,
            iam_server=False,
            gsock=gsock,
            resource=f"ws://127.0.0.1:{self.port}{path}",
            max_message_size=64 * 1048576,
            max_fragments=1 << 20,
            ping_interval=None,
            compression=self.compression,
            close_timeout=5.0,
        )

    def step(self) -> None:
        if self.case_count < 0:
            self.connect("/getCaseCount")
        elif self.case < self.case_count:
            self.case += 1
            self.connect(f"/runCase?case={self.case}&agent={AGENT}")
        elif not self.done:
            self.done = True
            self.connect(f"/updateReports?agent={AGENT}")
        else:
            self.gaplic.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--wstest", required=True, help="path of Autobahn's wstest")
    parser.add_argument("--cases", default="*")
    parser.add_argument("--exclude", default="9.*,12.*,13.*")
    parser.add_argument("--compression", action="store_true", help="offer permessage-deflate")
    parser.add_argument("--outdir", default=None, help="reports directory (default: a temp dir)")
    args = parser.parse_args(argv)
    outdir = args.outdir or tempfile.mkdtemp(prefix="autobahn-client-")
    os.makedirs(outdir, exist_ok=True)
    port = _free_port()
    spec = {
        "url": f"ws://127.0.0.1:{port}",
        "outdir": "reports/clients",
        "cases": args.cases.split(","),
        "exclude-cases": [c for c in args.exclude.split(",") if c],
        "exclude-agent-cases": {},
    }
    spec_file = os.path.join(outdir, "fuzzingserver.json")
    with open(spec_file, "w") as f:
        json.dump(spec, f)
    with open(os.path.join(outdir, "wstest.log"), "wb") as log:
        server = subprocess.Popen(
            [args.wstest, "-m", "fuzzingserver", "-s", spec_file],
            cwd=outdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.2)
        started = time.monotonic()
        with GAplic("autobahn_client") as gaplic:
            driver: Driver = gaplic.create_gobj("driver", Driver, gaplic)
            driver.port = port
            driver.compression = "deflate" if args.compression else None
            gaplic.add_callback(driver.step)
            gaplic.start()
        wall = time.monotonic() - started
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=5)
    with open(os.path.join(outdir, "reports", "clients", "index.json")) as f:
        results = json.load(f)[AGENT]
    counts: dict[str, int] = {}
    close_counts: dict[str, int] = {}
    failed = []
    for case, r in results.items():
        counts[r["behavior"]] = counts.get(r["behavior"], 0) + 1
        close_counts[r["behaviorClose"]] = close_counts.get(r["behaviorClose"], 0) + 1
        if "FAILED" in (r["behavior"], r["behaviorClose"]):
            failed.append(case)
    summary = {
        "name": AGENT,
        "cases": len(results),
        "behavior": counts,
        "behaviorClose": close_counts,
        "failed": sorted(failed, key=lambda c: [int(x) for x in c.split(".")]),
        "wall_s": round(wall, 1),
        "excluded": spec["exclude-cases"],
        "reports": os.path.join(outdir, "reports", "clients"),
    }
    print(json.dumps(summary))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
