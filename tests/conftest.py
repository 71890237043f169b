"""Shared fixtures: a GAplic that is always closed, and a fake monotonic clock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fsmio import GAplic, GSock, SMachine
from fsmio.core import smachine


class FakeClock:
    """A monotonic clock that moves only when told: ``clock.advance(seconds)``."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def gaplic() -> Iterator[GAplic]:
    """A GAplic on the default loop (uvloop when installed), closed after the test."""
    ga = GAplic("test")
    try:
        yield ga
    finally:
        ga.close()


@pytest.fixture
def fake_gaplic(clock: FakeClock) -> Iterator[GAplic]:
    """A GAplic whose timers run on the fake ``clock`` fixture (drive it with _loop())."""
    ga = GAplic("fake", clock=clock)
    try:
        yield ga
    finally:
        ga.close()


@pytest.fixture(autouse=True)
def _reset_global_trace() -> Iterator[None]:
    traced_before = smachine._traced_machines
    yield
    SMachine.global_trace_mach(False)
    # Many tests leave traced gobjs behind without destroying them (a GAplic run by the
    # runner, ginsfsm's unit tests...): their count would keep every later test's events
    # on the traced path, and the inspector's "observers gone" checks could not tell.
    smachine._traced_machines = traced_before
    smachine._update_trace_any()
    # A ported ginsfsm program run in-process sets GSock._global_trace_dump = True: left
    # on, every later test hexdumps all its traffic (a 64 MiB response takes minutes).
    GSock.global_trace_dump(False)
