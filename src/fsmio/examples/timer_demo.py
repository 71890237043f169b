"""Two gobjs and a timer: a ``Ticker`` whose GTimer fires every ``--interval`` seconds
sends ``EV_TICK`` to a ``Counter``, which prints it; after ``--ticks`` ticks the counter
stops the GAplic.

    python -m fsmio.examples.timer_demo --ticks 5 --interval 0.2 [--trace]

Prints one line per tick and a last ``DONE <ticks> ticks in <seconds> s`` line; exits 0
(1 if the reader of its output went away first, as in ``| head -2``: it stops at once).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from typing import Any

from fsmio import GAplic, GObj, GTimer
from fsmio.core.event import Event

# ----------------------------------------------------------------------------------------
#   Counter: prints each tick, stops the GAplic after `ticks` of them
# ----------------------------------------------------------------------------------------
COUNTER_GCONFIG: dict[str, list[Any]] = {
    "ticks": [int, 5, 0, None, "Stop the GAplic after this many ticks."],
}


def ac_tick(self: Counter, event: Event) -> int:
    self.count += 1
    done = self.count >= self.config.ticks
    if done:
        self.gaplic.stop()  # first: a print that fails below must not keep it running
    try:
        print(f"tick {self.count} from {event.source[0].name}: n={event.n}", flush=True)
    except BrokenPipeError:
        # Whoever read our output is gone (``| head``): nothing more to say.
        self.reader_gone = True
        self.gaplic.stop()
        return -1
    return 0 if done else self.count


COUNTER_FSM: dict[str, Any] = {
    "event_list": ("EV_TICK: top input",),
    "state_list": ("ST_COUNTING",),
    "machine": {"ST_COUNTING": (("EV_TICK", ac_tick, None),)},
}


class Counter(GObj):
    def __init__(self) -> None:
        GObj.__init__(self, COUNTER_FSM, COUNTER_GCONFIG)
        self.count = 0
        self.reader_gone = False


# ----------------------------------------------------------------------------------------
#   Ticker: owns a cyclic GTimer, sends EV_TICK to the counter on each EV_TIMEOUT
# ----------------------------------------------------------------------------------------
TICKER_GCONFIG: dict[str, list[Any]] = {
    "interval": [float, 1.0, 0, None, "Seconds between ticks."],
    "counter": [str, "counter", 0, None, "Unique name of the gobj that gets EV_TICK."],
}


def ac_timeout(self: Ticker, event: Event) -> None:
    self.n += 1
    self.send_event(self.config.counter, "EV_TICK", n=self.n)


TICKER_FSM: dict[str, Any] = {
    "event_list": ("EV_TIMEOUT: bottom input",),
    "state_list": ("ST_RUNNING",),
    "machine": {"ST_RUNNING": (("EV_TIMEOUT", ac_timeout, None),)},
}


class Ticker(GObj):
    def __init__(self) -> None:
        GObj.__init__(self, TICKER_FSM, TICKER_GCONFIG)
        self.n = 0

    def start_up(self) -> None:
        self.timer = self.create_gobj("timer", GTimer, self)
        self.send_event(self.timer, "EV_SET_TIMER", seconds=self.config.interval, autostart=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ticks", type=int, default=5)
    parser.add_argument("--interval", type=float, default=0.2)
    parser.add_argument("--trace", action="store_true", help="log every transition")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")

    gaplic = GAplic("timer_demo", trace_mach=args.trace)
    gaplic.create_gobj("counter", Counter, gaplic, ticks=args.ticks, __unique_name__=True)
    gaplic.create_gobj("ticker", Ticker, gaplic, interval=args.interval)
    started = time.monotonic()
    gaplic.start()
    counter = gaplic.find_unique_gobj("counter")
    assert isinstance(counter, Counter)
    gaplic.close()
    if not counter.reader_gone:
        try:
            print(f"DONE {counter.count} ticks in {time.monotonic() - started:.2f} s", flush=True)
        except BrokenPipeError:
            counter.reader_gone = True
    if counter.reader_gone:
        # Python's advice (signal module docs, "Note on SIGPIPE"): point stdout at
        # devnull so that the flush at exit does not raise again; exit 1 as Python does.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return 0 if counter.count == args.ticks else 1


if __name__ == "__main__":
    sys.exit(main())
