"""ginsfsm's ``inter_event`` example, over NATS: a bank, a lender and a stock exchange,
three GAplics in three processes.

    python -m fsmio.examples.inter_event          # from the repository's root

starts a ``nats-server`` of its own (127.0.0.1, a free port), then ``fsmio run`` on
``examples/inter_event/{lender,exchange,bank}.toml``.  The bank, once connected:

1. subscribes to the exchange's price ticks (``subscribe_event_outside``; the exchange's
   ``market`` gobj is *exported*);
2. asks *a* lender — by role, ``lenders`` — for a loan, with ``__subscribe_response__``:
   the lender's return value comes back as ``__action_return__``; the lender also answers
   ginsfsm's way, with ``send_event_outside`` to the event's ``__intra_event__`` origin;
3. buys shares at the exchange (by GAplic name), with the answer;
4. prints three price ticks, then asks the exchange for a gobj it does not have, to show
   the refusal (``__error__ = 'gobj_not_found'``), and stops.  A destination not up yet
   answers ``no_responders`` at once: the bank retries on its GTimer.

Then the launcher stops the lender and the exchange (SIGTERM, graceful) and the server.
Exit 0 when the bank finished its script.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fsmio import GObj, GTimer
from fsmio.core.event import Event


def say(gobj: GObj, text: str) -> None:
    print(f"[{gobj.gaplic.name}] {text}", flush=True)


# ----------------------------------------------------------------------------------------
#   Bank: the client of the other two
# ----------------------------------------------------------------------------------------
BANK_GCONFIG: dict[str, list[Any]] = {
    "user": [str, "ana", 0, None, "The customer."],
    "euros": [int, 1000, 0, None, "The loan asked for."],
    "shares": [int, 10, 0, None, "Shares bought."],
    "ticks": [int, 3, 0, None, "Price ticks shown before stopping."],
    "retry": [float, 0.2, 0, None, "Seconds before asking again a peer not up yet."],
}


def ac_start(self: Bank, event: Event) -> None:
    say(self, f"connected to NATS at {event.kw.get('server')}")
    self.gaplic.subscribe_event_outside("exchange", "", "market", "EV_PRICE", self)
    self.ask_loan()


def ac_loan_answer(self: Bank, event: Event) -> None:
    if event.__error__ == "no_responders":
        self.retry("EV_ASK_LOAN")
        return
    ie = event.__intra_event__
    say(self, f"loan from {ie.origin_gaplic} (role {ie.origin_role}): {event.__action_return__}")
    self.set_new_state("ST_BUYING")
    self.buy()


def ac_loan_ack(self: Bank, event: Event) -> None:
    ie = event.__intra_event__
    say(self, f"EV_LOAN_ACK from {ie.origin_gaplic}/{ie.origin_gobj}: total={event.total}")


def ac_buy_answer(self: Bank, event: Event) -> None:
    if event.__error__ == "no_responders":
        self.retry("EV_ASK_BUY")
        return
    say(self, f"bought at {event.__intra_event__.origin_gaplic}: {event.__action_return__}")
    self.set_new_state("ST_WATCHING")


def ac_price(self: Bank, event: Event) -> None:
    if self.get_current_state() != "ST_WATCHING":
        return
    self.prices += 1
    say(
        self, f"price tick from {event.__intra_event__.origin_gaplic}: {event.symbol} {event.price}"
    )
    if self.prices >= self.config.ticks:
        self.gaplic.unsubscribe_event_outside("exchange", "", "market", "EV_PRICE", self)
        self.set_new_state("ST_ENDING")
        self.gaplic.send_event_outside(
            "exchange", "", "nobody", "EV_BUY", self, __subscribe_response__=True
        )


def ac_refused(self: Bank, event: Event) -> None:
    say(self, f"asked a gobj the exchange does not have: {event.__error__}: {event.__message__}")
    say(self, "DONE")
    self.gaplic.stop()


def ac_retry(self: Bank, event: Event) -> None:
    if self.pending == "EV_ASK_LOAN":
        self.ask_loan()
    elif self.pending == "EV_ASK_BUY":
        self.buy()


def ac_ignore(self: Bank, event: Event) -> None:
    return None


def ac_link(self: Bank, event: Event) -> None:
    say(self, f"{event.event_name} {event.kw.get('reason', '')}")


_LINK = (
    ("EV_REMOTE_DISCONNECTED", ac_link, None),
    ("EV_REMOTE_CLOSED", ac_link, None),
    ("EV_REMOTE_ERROR", ac_link, None),
)


BANK_FSM: dict[str, Any] = {
    "event_list": (
        "EV_REMOTE_CONNECTED: bottom input",
        "EV_REMOTE_DISCONNECTED: bottom input",
        "EV_REMOTE_CLOSED: bottom input",
        "EV_REMOTE_ERROR: bottom input",
        "EV_LOAN: bottom input",
        "EV_LOAN_ACK: bottom input",
        "EV_BUY: bottom input",
        "EV_PRICE: bottom input",
        "EV_TIMEOUT: bottom input",
    ),
    "state_list": ("ST_WAITING", "ST_LOAN", "ST_BUYING", "ST_WATCHING", "ST_ENDING"),
    "machine": {
        "ST_WAITING": (("EV_REMOTE_CONNECTED", ac_start, "ST_LOAN"), *_LINK),
        "ST_LOAN": (
            ("EV_LOAN", ac_loan_answer, None),
            ("EV_LOAN_ACK", ac_loan_ack, None),
            ("EV_PRICE", ac_ignore, None),
            ("EV_TIMEOUT", ac_retry, None),
            *_LINK,
        ),
        "ST_BUYING": (
            ("EV_BUY", ac_buy_answer, None),
            ("EV_LOAN_ACK", ac_loan_ack, None),
            ("EV_PRICE", ac_ignore, None),
            ("EV_TIMEOUT", ac_retry, None),
            *_LINK,
        ),
        "ST_WATCHING": (
            ("EV_PRICE", ac_price, None),
            ("EV_LOAN_ACK", ac_loan_ack, None),
            *_LINK,
        ),
        "ST_ENDING": (
            ("EV_BUY", ac_refused, None),
            ("EV_PRICE", ac_ignore, None),
            *_LINK,
        ),
    },
}


class Bank(GObj):
    """Asks a lender and the exchange, watches prices, then stops its GAplic."""

    def __init__(self) -> None:
        GObj.__init__(self, BANK_FSM, BANK_GCONFIG)
        self.prices = 0
        self.pending = ""

    def start_up(self) -> None:
        self.timer = self.create_gobj("timer", GTimer, self)

    def retry(self, what: str) -> None:
        self.pending = what
        self.send_event(self.timer, "EV_SET_TIMER", seconds=self.config.retry)

    def ask_loan(self) -> None:
        self.gaplic.send_event_outside(
            "",
            "lenders",
            "loans",
            "EV_LOAN",
            self,
            user=self.config.user,
            euros=self.config.euros,
            __subscribe_response__=True,
        )

    def buy(self) -> None:
        self.gaplic.send_event_outside(
            "exchange",
            "",
            "market",
            "EV_BUY",
            self,
            user=self.config.user,
            shares=self.config.shares,
            __subscribe_response__=True,
        )


# ----------------------------------------------------------------------------------------
#   Lender: grants loans, answers twice (the return value, and ginsfsm's way)
# ----------------------------------------------------------------------------------------
def ac_loan(self: Lender, event: Event) -> Any:
    euros = int(event.euros)
    total = self.loans[event.user] = self.loans.get(event.user, 0) + euros
    ie = event.__intra_event__
    # ginsfsm's inter_event examples answered like this, to the event's origin.
    self.gaplic.send_event_outside(
        ie.origin_gaplic, ie.origin_role, ie.origin_gobj, "EV_LOAN_ACK", self, total=total
    )
    return {"granted": euros, "user": event.user, "by": self.gaplic.name}


LENDER_FSM: dict[str, Any] = {
    "event_list": ("EV_LOAN: top input", "EV_LOAN_ACK: top output"),
    "state_list": ("ST_IDLE",),
    "machine": {"ST_IDLE": (("EV_LOAN", ac_loan, None),)},
}


class Lender(GObj):
    def __init__(self) -> None:
        GObj.__init__(self, LENDER_FSM)
        self.loans: dict[str, int] = {}


# ----------------------------------------------------------------------------------------
#   Exchange: sells shares and publishes a price tick on its GTimer
# ----------------------------------------------------------------------------------------
EXCHANGE_GCONFIG: dict[str, list[Any]] = {
    "interval": [float, 0.2, 0, None, "Seconds between price ticks."],
    "symbol": [str, "FSMIO", 0, None, "The share."],
}


def ac_buy(self: Exchange, event: Event) -> Any:
    shares = int(event.shares)
    return {"user": event.user, "shares": shares, "price": self.price, "cost": shares * self.price}


def ac_tick(self: Exchange, event: Event) -> None:
    self.price += 1
    self.broadcast_event("EV_PRICE", symbol=self.config.symbol, price=self.price)


EXCHANGE_FSM: dict[str, Any] = {
    "event_list": ("EV_BUY: top input", "EV_TIMEOUT: bottom input", "EV_PRICE: top output"),
    "state_list": ("ST_OPEN",),
    "machine": {"ST_OPEN": (("EV_BUY", ac_buy, None), ("EV_TIMEOUT", ac_tick, None))},
}


class Exchange(GObj):
    def __init__(self) -> None:
        GObj.__init__(self, EXCHANGE_FSM, EXCHANGE_GCONFIG)
        self.price = 100

    def start_up(self) -> None:
        timer = self.create_gobj("timer", GTimer, self)
        self.send_event(timer, "EV_SET_TIMER", seconds=self.config.interval, autostart=True)


# ----------------------------------------------------------------------------------------
#   The launcher
# ----------------------------------------------------------------------------------------
def start_nats_server(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
    if not os.path.exists(binary):
        raise SystemExit("nats-server is not installed (Debian: apt-get install nats-server)")
    args = [binary, "-a", "127.0.0.1", "-p", "-1", "--ports_file_dir", str(workdir)]
    proc = subprocess.Popen([*args, "-l", str(workdir / "nats.log")])
    ports = workdir / f"nats-server_{proc.pid}.ports"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and proc.poll() is None:
        if ports.exists():
            try:
                return proc, json.loads(ports.read_text())["nats"][0]
            except (ValueError, KeyError, IndexError):
                pass
        time.sleep(0.01)
    proc.kill()
    proc.wait()
    raise SystemExit("nats-server did not start")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "directory", nargs="?", default="examples/inter_event", help="where the TOML files are"
    )
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds for the script")
    args = parser.parse_args(argv)
    try:
        import nats  # noqa: F401  (GRemote needs it; say so now, not after a timeout)
    except ImportError:
        raise SystemExit("the demo needs nats-py: pip install 'fsmio[nats]'") from None
    directory = Path(args.directory)
    if not (directory / "bank.toml").exists():
        raise SystemExit(f"no {directory / 'bank.toml'}: run it from the repository's root")
    with tempfile.TemporaryDirectory(prefix="fsmio-inter-event-") as tmp:
        server, url = start_nats_server(Path(tmp))
        print(f"[launcher] nats-server {url} (pid {server.pid})", flush=True)
        procs: dict[str, subprocess.Popen[bytes]] = {}
        try:
            for name in ("lender", "exchange", "bank"):
                command = [sys.executable, "-m", "fsmio", "run", str(directory / f"{name}.toml")]
                procs[name] = subprocess.Popen([*command, "--set", f"router.servers={url}"])
            try:
                code = procs["bank"].wait(args.timeout)
            except subprocess.TimeoutExpired:
                print("[launcher] the bank did not finish in time", flush=True)
                code = 1
        finally:
            for proc in procs.values():
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for proc in procs.values():
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            server.send_signal(signal.SIGINT)
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    print(f"[launcher] done, exit {code}", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
