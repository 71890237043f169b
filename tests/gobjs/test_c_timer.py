"""GTimer: float seconds, one-shot and cyclic without drift, sticky parameters, delivery
through the queue, cancel and destroy mean never."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsmio import Event, GAplic, GConfigValidateError, GObj, GObjError, GTimer
from tests.conftest import FakeClock
from tests.helpers import drive


def ac_timeout(self: Owner, event: Event) -> None:
    self.timeouts.append((self.gaplic.time(), event.event_name, event.source[-1]))


OWNER_FSM = {
    "event_list": ("EV_TIMEOUT: bottom input", "EV_ALARM: bottom input"),
    "state_list": ("ST_IDLE",),
    "machine": {
        "ST_IDLE": (("EV_TIMEOUT", ac_timeout, None), ("EV_ALARM", ac_timeout, None)),
    },
}


class Owner(GObj):
    def __init__(self) -> None:
        GObj.__init__(self, OWNER_FSM)
        self.timeouts: list[tuple[float, str, Any]] = []


def make(gaplic: GAplic, **kw: Any) -> tuple[Owner, GTimer]:
    owner = gaplic.create_gobj("owner", Owner, gaplic)
    timer = gaplic.create_gobj("timer", GTimer, owner, **kw)
    return owner, timer


def settle(gaplic: GAplic, iterations: int = 3) -> None:
    for _ in range(iterations):
        gaplic._loop()


def test_one_shot_float_seconds_fires_once_through_the_queue(
    fake_gaplic: GAplic, clock: FakeClock
) -> None:
    owner, timer = make(fake_gaplic)
    start = clock.now
    owner.send_event(timer, "EV_SET_TIMER", seconds=0.25)
    assert timer.is_running()
    clock.advance(0.2499)
    settle(fake_gaplic)
    assert owner.timeouts == []
    clock.advance(0.0001)
    fake_gaplic._loop()  # the timer expires and queues its delivery...
    assert owner.timeouts == []
    fake_gaplic._loop()  # ...which the next iteration delivers
    assert owner.timeouts == [(start + 0.25, "EV_TIMEOUT", timer)]
    assert not timer.is_running()
    clock.advance(10)
    settle(fake_gaplic)
    assert len(owner.timeouts) == 1


def test_cyclic_timer_does_not_drift(fake_gaplic: GAplic, clock: FakeClock) -> None:
    owner, timer = make(fake_gaplic)
    start = clock.now
    owner.send_event(timer, "EV_SET_TIMER", seconds=1.0, autostart=True)
    for late in (0.3, 0.0, 0.9, 0.1):
        clock.now = timer._deadline + late  # processed late each time
        settle(fake_gaplic, 2)
    deadlines = [t for t, _, _ in owner.timeouts]
    assert len(deadlines) == 4
    assert timer._deadline == pytest.approx(start + 5.0)  # still on the 1 s grid


def test_cyclic_timer_skips_ticks_missed_while_blocked(
    fake_gaplic: GAplic, clock: FakeClock
) -> None:
    owner, timer = make(fake_gaplic)
    start = clock.now
    owner.send_event(timer, "EV_SET_TIMER", seconds=1.0, autostart=True)
    clock.advance(5.5)  # the loop was blocked for 5.5 s
    settle(fake_gaplic)
    assert len(owner.timeouts) == 1  # one late tick, not a burst of five
    assert timer._deadline == pytest.approx(start + 6.0)


def test_parameters_are_sticky(fake_gaplic: GAplic, clock: FakeClock) -> None:
    owner, timer = make(fake_gaplic)
    owner.send_event(timer, "EV_SET_TIMER", seconds=1, autostart=True)
    owner.send_event(timer, "EV_SET_TIMER", seconds=2)  # autostart kept
    assert timer.config.autostart is True
    for _ in range(3):
        clock.advance(2)
        settle(fake_gaplic, 2)
    assert len(owner.timeouts) == 3
    owner.send_event(timer, "EV_SET_TIMER", autostart=False)  # seconds kept: re-armed, one-shot
    assert timer.config.seconds == 2
    clock.advance(2)
    settle(fake_gaplic)
    clock.advance(10)
    settle(fake_gaplic)
    assert len(owner.timeouts) == 4


def test_minus_one_cancels(fake_gaplic: GAplic, clock: FakeClock) -> None:
    owner, timer = make(fake_gaplic)
    owner.send_event(timer, "EV_SET_TIMER", seconds=1, autostart=True)
    owner.send_event(timer, "EV_SET_TIMER", seconds=-1)
    assert not timer.is_running()
    clock.advance(5)
    settle(fake_gaplic)
    assert owner.timeouts == []


def test_cancel_after_expiry_was_queued_means_never(fake_gaplic: GAplic, clock: FakeClock) -> None:
    owner, timer = make(fake_gaplic)
    owner.send_event(timer, "EV_SET_TIMER", seconds=1)
    clock.advance(1)
    fake_gaplic._loop()  # expired: the delivery is in the queue now
    assert fake_gaplic._qevent
    owner.send_event(timer, "EV_SET_TIMER", seconds=-1)
    settle(fake_gaplic)
    assert owner.timeouts == []


def test_rearm_after_expiry_was_queued_replaces_it(fake_gaplic: GAplic, clock: FakeClock) -> None:
    owner, timer = make(fake_gaplic)
    owner.send_event(timer, "EV_SET_TIMER", seconds=1)
    clock.advance(1)
    fake_gaplic._loop()
    owner.send_event(timer, "EV_SET_TIMER", seconds=3)
    settle(fake_gaplic)
    assert owner.timeouts == []
    clock.advance(3)
    settle(fake_gaplic)
    assert len(owner.timeouts) == 1


def test_destroy_cancels_even_a_queued_expiry(fake_gaplic: GAplic, clock: FakeClock) -> None:
    owner, timer = make(fake_gaplic)
    owner.send_event(timer, "EV_SET_TIMER", seconds=1, autostart=True)
    clock.advance(1)
    fake_gaplic._loop()
    GObj.destroy_gobj(timer)
    clock.advance(10)
    assert fake_gaplic._loop() is False  # no timer left armed
    settle(fake_gaplic)
    assert owner.timeouts == []


def test_destroying_the_owner_destroys_and_cancels_its_timer(
    fake_gaplic: GAplic, clock: FakeClock
) -> None:
    owner, timer = make(fake_gaplic)
    owner.send_event(timer, "EV_SET_TIMER", seconds=1, autostart=True)
    GObj.destroy_gobj(owner)
    assert timer._destroyed and not timer.is_running()
    clock.advance(5)
    assert fake_gaplic._loop() is False


def test_timeout_event_name_and_explicit_subscriber(fake_gaplic: GAplic, clock: FakeClock) -> None:
    owner = fake_gaplic.create_gobj("owner", Owner, fake_gaplic)
    other = fake_gaplic.create_gobj("other", Owner, fake_gaplic)
    timer = fake_gaplic.create_gobj(
        "timer", GTimer, owner, timeout_event_name="EV_ALARM", subscriber=other
    )
    owner.send_event(timer, "EV_SET_TIMER", seconds=0)
    settle(fake_gaplic)
    assert owner.timeouts == []
    assert [name for _, name, _ in other.timeouts] == ["EV_ALARM"]


def test_zero_seconds_fires_next_iteration(fake_gaplic: GAplic) -> None:
    owner, timer = make(fake_gaplic)
    owner.send_event(timer, "EV_SET_TIMER", seconds=0)
    settle(fake_gaplic, 2)
    assert len(owner.timeouts) == 1


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, "soon", None, [1]])
def test_invalid_seconds_are_rejected_at_ev_set_timer(fake_gaplic: GAplic, bad: Any) -> None:
    owner, timer = make(fake_gaplic)
    with pytest.raises(GConfigValidateError, match="seconds"):
        owner.send_event(timer, "EV_SET_TIMER", seconds=bad)
    assert not timer.is_running()


def test_seconds_as_a_string_from_a_config_file(fake_gaplic: GAplic, clock: FakeClock) -> None:
    owner, timer = make(fake_gaplic)
    owner.send_event(timer, "EV_SET_TIMER", seconds="0.5", autostart="no")
    clock.advance(0.5)
    settle(fake_gaplic)
    assert len(owner.timeouts) == 1


def test_a_timer_needs_a_gaplic() -> None:
    owner = Owner()
    timer = owner.create_gobj("timer", GTimer, owner)
    with pytest.raises(GObjError, match="needs a GAplic"):
        owner.send_event(timer, "EV_SET_TIMER", seconds=1)


def test_real_clock_timer(gaplic: GAplic) -> None:
    owner, timer = make(gaplic)
    start = gaplic.time()
    owner.send_event(timer, "EV_SET_TIMER", seconds=0.05)
    drive(gaplic, lambda: bool(owner.timeouts), timeout=5)
    assert owner.timeouts[0][0] - start >= 0.05


@settings(max_examples=60, deadline=None)
@given(
    period=st.floats(min_value=0.01, max_value=100, allow_nan=False),
    lateness=st.lists(st.floats(min_value=0.001, max_value=0.99), min_size=1, max_size=20),
)
def test_cyclic_deadlines_stay_on_the_grid(period: float, lateness: list[float]) -> None:
    clock = FakeClock()
    with GAplic("grid", clock=clock) as ga:
        owner, timer = make(ga)
        start = clock.now
        owner.send_event(timer, "EV_SET_TIMER", seconds=period, autostart=True)
        for n, late in enumerate(lateness, 1):
            clock.now = start + n * period + late * period
            ga._process_timers()
            ga._loop()
            assert timer._deadline == pytest.approx(start + (n + 1) * period, rel=1e-9)
        assert len(owner.timeouts) == len(lateness)
