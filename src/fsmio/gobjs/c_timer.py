"""``GTimer``: a one-shot or cyclic timer gobj.

Send it ``EV_SET_TIMER(seconds=..., autostart=...)``; when the time is up it broadcasts
``EV_TIMEOUT`` (or the name in ``timeout_event_name``) to its subscriber, the parent by
default.

Configuration:

==================  =====  ============  ====================================================
name                type   default       description
==================  =====  ============  ====================================================
subscriber          None   None          Gets every output event; None means the parent.
timeout_event_name  str    EV_TIMEOUT    Name of the event broadcast at expiry.
seconds             float  -1            Seconds to expiry (sub-second is fine); -1 cancels.
autostart           bool   False         Cyclic: expire every ``seconds``.
==================  =====  ============  ====================================================

Input events:

* ``EV_SET_TIMER`` — arm, re-arm or cancel.  Attributes: ``seconds`` (float; any negative
  value cancels), ``autostart`` (bool).  An attribute left out keeps its previous value.

Output events:

* ``EV_TIMEOUT`` — the time is up.  No attributes; ``event.source[-1]`` is the timer.

Theory of operation
-------------------
Expiry is a GAplic timer on its monotonic clock.  It does not broadcast from the timer
callback: it posts ``EV_TIMER_EXPIRED`` (with the arming's *generation*) to the GTimer
itself, so the timeout reaches the subscriber through the queue, in order with the events
posted before it.  Re-arming, cancelling or destroying the GTimer starts a new generation,
so an expiry already queued is ignored: a cancelled timer never delivers.  A cyclic timer
computes each deadline from the previous deadline, not from when it ran, so it does not
drift; ticks missed while the loop was blocked are skipped.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from fsmio.aplic.gaplic import GAplic, TimerHandle, next_periodic_deadline
from fsmio.core.errors import GObjError
from fsmio.core.event import Event
from fsmio.core.gconfig import finite_number
from fsmio.core.gobj import GObj

__all__ = ["GTIMER_FSM", "GTIMER_GCONFIG", "GTimer"]

_LOG = logging.getLogger("fsmio")

# ----------------------------------------------------------------------------------------
#   Config
# ----------------------------------------------------------------------------------------
GTIMER_GCONFIG: Final[dict[str, list[Any]]] = {
    "subscriber": [None, None, 0, None, "Gets every output event; None means the parent."],
    "timeout_event_name": [str, "EV_TIMEOUT", 0, None, "Name of the event broadcast at expiry."],
    "seconds": [float, -1, 0, finite_number, "Seconds to expiry; -1 (any negative) cancels."],
    "autostart": [bool, False, 0, None, "Cyclic: expire every `seconds`."],
}


# ----------------------------------------------------------------------------------------
#   Actions
# ----------------------------------------------------------------------------------------
def ac_set_timer(self: GTimer, event: Event) -> None:
    self.write_few_parameters(("seconds", "autostart"), **event.kw)
    self._cancel()
    seconds = self.config.seconds
    if seconds >= 0:
        gaplic = self._require_gaplic()
        self._arm(gaplic, gaplic.time() + seconds)


def ac_timer_expired(self: GTimer, event: Event) -> None:
    if event.kw.get("generation") == self._generation:
        self.broadcast_event(self.config.timeout_event_name)


# ----------------------------------------------------------------------------------------
#   FSM
# ----------------------------------------------------------------------------------------
GTIMER_FSM: Final[dict[str, Any]] = {
    "event_list": (
        "EV_SET_TIMER: top input",
        "EV_TIMEOUT: top output",
        "EV_TIMER_EXPIRED: bottom input",
    ),
    "state_list": ("ST_IDLE",),
    "machine": {
        "ST_IDLE": (
            ("EV_SET_TIMER", ac_set_timer, "ST_IDLE"),
            ("EV_TIMER_EXPIRED", ac_timer_expired, "ST_IDLE"),
        ),
    },
}


# ----------------------------------------------------------------------------------------
#   GClass
# ----------------------------------------------------------------------------------------
class GTimer(GObj):
    """A timer gobj: ``EV_SET_TIMER`` in, ``EV_TIMEOUT`` out (see the module doc)."""

    def __init__(self) -> None:
        GObj.__init__(self, GTIMER_FSM, GTIMER_GCONFIG)
        self._handle: TimerHandle | None = None
        self._deadline = 0.0
        self._generation = 0

    def start_up(self) -> None:
        subscriber = self.config.subscriber
        if subscriber is not None or self.parent is not None:
            self.subscribe_event(None, subscriber)

    def go_out(self) -> None:
        self._cancel()

    def is_running(self) -> bool:
        """Whether the timer is armed."""
        return self._handle is not None

    def _require_gaplic(self) -> GAplic:
        gaplic = self.gaplic
        if not isinstance(gaplic, GAplic):
            raise GObjError(f"{self!r}: a GTimer needs a GAplic (create it through one)")
        return gaplic

    def _cancel(self) -> None:
        self._generation += 1
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _arm(self, gaplic: GAplic, deadline: float) -> None:
        self._deadline = deadline
        self._handle = gaplic.call_at(deadline, self._expired, gaplic)

    def _expired(self, gaplic: GAplic) -> None:
        # Runs once per expiry (100 000 a second in the benchmark): the GAplic that armed
        # it comes as an argument instead of being looked up and checked again.
        self._handle = None
        generation = self._generation
        config = self.config
        if config.autostart:
            self._arm(gaplic, next_periodic_deadline(self._deadline, config.seconds, gaplic.time()))
        self.post_event(self, "EV_TIMER_EXPIRED", generation=generation)
