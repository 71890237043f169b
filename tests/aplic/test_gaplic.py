"""GAplic: the queue, callbacks, timers, the loop, start/stop/run, errors."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any

import pytest

from fsmio import (
    Callback,
    Event,
    GAplic,
    GConfigValidateError,
    GObj,
    GObjError,
    setup_gaplic_thread,
)
from fsmio.aplic import gaplic as gaplic_module
from fsmio.aplic.gaplic import next_periodic_deadline
from tests.conftest import FakeClock
from tests.helpers import drive


def ac_record(self: Recorder, event: Event) -> Any:
    self.events.append((event.event_name, dict(event.kw)))
    if event.kw.get("repost"):
        self.post_event(self, "EV_PING", repost=event.kw["repost"] - 1)
    if event.kw.get("boom"):
        raise RuntimeError("boom in action")
    return len(self.events)


RECORDER_FSM = {
    "event_list": ("EV_PING: top input", "EV_OUT: top output"),
    "state_list": ("ST_IDLE",),
    "machine": {"ST_IDLE": (("EV_PING", ac_record, None),)},
}

RECORDER_GCONFIG = {
    "port": [int, 0, 0, None, "a parameter to test ini settings"],
    "label": [str, "", 0, None, "another one"],
}


class Recorder(GObj):
    def __init__(self) -> None:
        GObj.__init__(self, RECORDER_FSM, RECORDER_GCONFIG)
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.went_out = False

    def go_out(self) -> None:
        self.went_out = True


# ----------------------------------------------------------------------------------------
#   The queue
# ----------------------------------------------------------------------------------------
def test_posted_events_are_delivered_fifo_in_one_iteration_without_quota(
    gaplic: GAplic,
) -> None:
    rec = gaplic.create_gobj("rec", Recorder, gaplic)
    for i in range(1000):
        rec.post_event(rec, "EV_PING", i=i)
    assert rec.events == []  # queued, not delivered yet
    remains = gaplic._loop()
    assert [kw["i"] for _, kw in rec.events] == list(range(1000))
    assert remains is False


def test_events_posted_while_draining_wait_for_the_next_iteration(gaplic: GAplic) -> None:
    rec = gaplic.create_gobj("rec", Recorder, gaplic)
    rec.post_event(rec, "EV_PING", repost=3)
    counts = []
    for _ in range(5):
        gaplic._loop()
        counts.append(len(rec.events))
    # One generation per iteration: the I/O poll runs between them (no starvation).
    assert counts == [1, 2, 3, 4, 4]


def test_queued_event_for_a_destroyed_gobj_is_dropped(
    gaplic: GAplic, caplog: pytest.LogCaptureFixture
) -> None:
    rec = gaplic.create_gobj("rec", Recorder, gaplic)
    rec.post_event(rec, "EV_PING")
    GObj.destroy_gobj(rec)
    with caplog.at_level(logging.DEBUG, logger="fsmio"):
        gaplic._loop()
    assert rec.events == []
    assert "destroyed" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_post_event_by_unique_name_is_resolved_when_dequeued(
    gaplic: GAplic, caplog: pytest.LogCaptureFixture
) -> None:
    sender = gaplic.create_gobj("sender", Recorder, gaplic)
    sender.post_event("late", "EV_PING", x=1)  # not created yet: resolved at delivery
    late = gaplic.create_gobj("late", Recorder, gaplic, __unique_name__=True)
    sender.post_event("nobody", "EV_PING")
    with caplog.at_level(logging.ERROR, logger="fsmio"):
        gaplic._loop()
    assert late.events == [("EV_PING", {"x": 1})]
    assert "no unique gobj named 'nobody'" in caplog.text


def test_exception_in_a_queued_action_is_logged_once_and_the_loop_goes_on(
    gaplic: GAplic, caplog: pytest.LogCaptureFixture
) -> None:
    rec = gaplic.create_gobj("rec", Recorder, gaplic)
    rec.post_event(rec, "EV_PING", boom=True)
    rec.post_event(rec, "EV_PING", after=True)
    with caplog.at_level(logging.ERROR, logger="fsmio"):
        gaplic._loop()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    message = errors[0].getMessage()
    assert "Recorder:rec" in message
    assert "ST_IDLE" in message
    assert "EV_PING" in message
    assert errors[0].exc_info is not None
    assert rec.events[-1] == ("EV_PING", {"after": True})


def test_handle_exception_can_be_overridden() -> None:
    seen: list[tuple[str, str]] = []

    class Quiet(GAplic):
        def handle_exception(self, exc: BaseException, context: str) -> None:
            seen.append((type(exc).__name__, context))

    with Quiet("quiet") as ga:
        ga.add_callback(lambda: 1 / 0)
        ga._loop()
    assert seen and seen[0][0] == "ZeroDivisionError"


# ----------------------------------------------------------------------------------------
#   Callbacks and threads
# ----------------------------------------------------------------------------------------
def test_add_callback_runs_next_iteration_with_arguments(gaplic: GAplic) -> None:
    calls: list[tuple[Any, ...]] = []
    gaplic.add_callback(lambda *a, **kw: calls.append((a, kw)), 1, 2, k=3)
    assert calls == []
    gaplic._loop()
    assert calls == [((1, 2), {"k": 3})]


def test_start_stop_and_post_event_from_another_thread() -> None:
    ga = GAplic("threaded")
    rec = ga.create_gobj("rec", Recorder, ga, __unique_name__=True)
    worker = setup_gaplic_thread(ga)
    worker.start()
    try:
        for i in range(50):
            GObj.post_event_from_outside("threaded", "rec", "EV_PING", i=i)
        deadline = time.monotonic() + 5
        while len(rec.events) < 50 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert [kw["i"] for _, kw in rec.events] == list(range(50))
        called = threading.Event()
        ga.add_callback(called.set)  # thread-safe, wakes the loop
        assert called.wait(5)
    finally:
        worker.stop(timeout=5)
    assert not worker.is_alive()
    assert not ga.is_running()
    ga.close()


def test_post_event_from_outside_unknown_gaplic_raises() -> None:
    with pytest.raises(GObjError, match="no GAplic named 'nope'"):
        GObj.post_event_from_outside("nope", "rec", "EV_PING")


def test_stop_before_start_makes_start_return_at_once() -> None:
    ga = GAplic("early")
    ga.stop()
    started = time.monotonic()
    ga.start()
    assert time.monotonic() - started < 2
    ga.close()


def test_run_inside_an_asyncio_program_with_timers_armed_before() -> None:
    ga = GAplic("inside")
    fired: list[float] = []
    ga.call_later(0.02, lambda: fired.append(ga.time()))

    async def main() -> str:
        other = asyncio.ensure_future(asyncio.sleep(0.01, result="other task ran"))
        ga.call_later(0.05, ga.stop)
        await ga.run()
        return await other

    assert asyncio.run(main()) == "other task ran"
    assert len(fired) == 1
    ga.close()


def test_a_gaplic_runs_on_one_loop_at_a_time(gaplic: GAplic) -> None:
    async def main() -> None:
        gaplic._bind(asyncio.get_running_loop())
        other = asyncio.new_event_loop()
        try:
            with pytest.raises(RuntimeError, match="another event loop"):
                gaplic._bind(other)
        finally:
            gaplic._unbind()
            other.close()

    asyncio.run(main())


def test_shutdown_callbacks_are_awaited_within_the_grace_period(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ga = GAplic("grace", shutdown_grace=0.2)
    done: list[str] = []

    async def quick() -> None:
        await asyncio.sleep(0.01)
        done.append("quick")

    async def slow() -> None:
        await asyncio.sleep(30)

    ga.add_shutdown_callback(quick)
    ga.add_shutdown_callback(slow)
    ga.add_shutdown_callback(lambda: done.append("sync"))
    ga.call_later(0.01, ga.stop)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="fsmio"):
        ga.start()
    assert time.monotonic() - started < 5
    assert sorted(done) == ["quick", "sync"]
    assert "still running" in caplog.text
    ga.close()


def test_cancelled_while_awaiting_shutdown_callbacks_logs_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """run()'s task cancelled during a hung graceful stop (what a second Ctrl-C does to
    start()): no "_GatheringFuture exception was never retrieved" from asyncio."""
    import gc

    async def main() -> None:
        ga = GAplic("cancelled-shutdown", shutdown_grace=60)

        async def never() -> None:
            await asyncio.sleep(3600)

        ga.add_shutdown_callback(never)
        task = asyncio.ensure_future(ga.run())
        await asyncio.sleep(0.01)
        ga.stop()
        for _ in range(100):  # until the shutdown callbacks are being awaited
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        ga.close()

    with caplog.at_level(logging.ERROR, logger="asyncio"):
        asyncio.run(main())
        gc.collect()
    assert "never retrieved" not in caplog.text


# ----------------------------------------------------------------------------------------
#   Timers on the GAplic's clock
# ----------------------------------------------------------------------------------------
def test_timers_fire_at_their_deadline_in_order(fake_gaplic: GAplic, clock: FakeClock) -> None:
    fired: list[str] = []
    fake_gaplic.call_later(2.0, fired.append, "b")
    fake_gaplic.call_later(1.0, fired.append, "a1")
    fake_gaplic.call_later(1.0, fired.append, "a2")  # equal deadlines: start order
    fake_gaplic.call_later(-5, fired.append, "now")  # negative delay: at once
    assert fake_gaplic._loop() is True
    assert fired == ["now"]
    clock.advance(0.999)
    fake_gaplic._loop()
    assert fired == ["now"]
    clock.advance(0.001)
    fake_gaplic._loop()
    assert fired == ["now", "a1", "a2"]
    clock.advance(1)
    assert fake_gaplic._loop() is False
    assert fired == ["now", "a1", "a2", "b"]


def test_a_cancelled_timer_never_runs(fake_gaplic: GAplic, clock: FakeClock) -> None:
    fired: list[int] = []
    handle = fake_gaplic.add_timeout(1, lambda: fired.append(1))
    fake_gaplic.remove_timeout(handle)
    handle.cancel()  # twice is fine
    clock.advance(2)
    assert fake_gaplic._loop() is False
    assert fired == []


def test_a_timer_cancelled_by_an_earlier_one_of_the_same_batch_does_not_run(
    fake_gaplic: GAplic, clock: FakeClock
) -> None:
    fired: list[str] = []
    second = fake_gaplic.call_later(1, fired.append, "second")
    fake_gaplic.call_later(0.5, second.cancel)
    clock.advance(1)
    fake_gaplic._loop()
    assert fired == []


def test_zero_delay_timer_rearmed_in_its_callback_does_not_starve_the_loop(
    fake_gaplic: GAplic,
) -> None:
    runs: list[int] = []

    def again() -> None:
        runs.append(1)
        fake_gaplic.call_later(0, again)

    fake_gaplic.call_later(0, again)
    for _ in range(5):
        assert fake_gaplic._loop() is True  # returns: one run per iteration
    assert 1 <= len(runs) <= 10


def test_many_cancelled_timers_do_not_accumulate(fake_gaplic: GAplic) -> None:
    handles = [fake_gaplic.call_later(100 + i, lambda: None) for i in range(2000)]
    for handle in handles[:1900]:
        handle.cancel()
    assert len(fake_gaplic._timers) < 1000
    assert fake_gaplic._live_timers == 100


def test_real_clock_timer_fires_on_a_running_loop(gaplic: GAplic) -> None:
    fired: list[float] = []
    start = time.monotonic()
    gaplic.call_later(0.05, lambda: fired.append(time.monotonic() - start))
    drive(gaplic, lambda: bool(fired), timeout=5)
    assert fired[0] >= 0.045


@pytest.mark.parametrize("use_uvloop", [True, False])
def test_timers_closer_than_a_millisecond_do_not_spin_the_loop(use_uvloop: bool) -> None:
    # uvloop makes a delay under half a millisecond a call_soon: without rounding the wait
    # up, the GAplic woke ~100 times per timer, finding nothing due.
    count, spacing = 200, 0.0002
    fired: list[float] = []
    wakeups = 0
    with GAplic("spin", use_uvloop=use_uvloop) as ga:
        process = ga._process_timers

        def counted() -> None:
            nonlocal wakeups
            wakeups += 1
            process()

        ga._process_timers = counted  # type: ignore[method-assign]
        start = ga.time() + 0.02
        deadlines = [start + i * spacing for i in range(count)]
        for deadline in deadlines:
            ga.call_at(deadline, lambda: fired.append(ga.time()))

        async def main() -> None:
            runner = asyncio.ensure_future(ga.run())
            for _ in range(500):
                if len(fired) == count:
                    break
                await asyncio.sleep(0.01)
            ga.stop()
            await runner

        loop = ga.new_event_loop()
        try:
            loop.run_until_complete(main())
        finally:
            loop.close()
    assert len(fired) == count
    assert all(f >= d for f, d in zip(fired, deadlines, strict=True))  # never early
    # 40 ms of deadlines: about one wake-up per millisecond, a few more at most.
    assert wakeups <= 100, wakeups


def test_periodic_callback_does_not_drift_and_skips_missed_ticks(
    fake_gaplic: GAplic, clock: FakeClock
) -> None:
    ticks: list[float] = []
    periodic = Callback(lambda: ticks.append(clock.now), 1.0, fake_gaplic)
    periodic.start()
    start = clock.now
    clock.advance(1.3)  # late by 0.3 s
    fake_gaplic._loop()
    assert periodic._deadline == pytest.approx(start + 2.0)  # not start + 2.3
    clock.advance(3.0)  # now start + 4.3: ticks 2, 3, 4 missed
    fake_gaplic._loop()
    assert len(ticks) == 2
    assert periodic._deadline == pytest.approx(start + 5.0)
    periodic.stop()
    assert not periodic.is_running()
    with pytest.raises(GConfigValidateError):
        Callback(lambda: None, 0, fake_gaplic)


def test_next_periodic_deadline() -> None:
    assert next_periodic_deadline(10.0, 1.0, 10.5) == 11.0
    assert next_periodic_deadline(10.0, 1.0, 13.2) == 14.0
    assert next_periodic_deadline(10.0, 0.0, 13.2) == 13.2


def test_settimeout_compat_one_shot_and_autostart(fake_gaplic: GAplic, clock: FakeClock) -> None:
    hits: list[str] = []
    fake_gaplic._setTimeout(1, lambda: hits.append("once"))
    cyclic = fake_gaplic._setTimeout(1, lambda: hits.append("tick"), autostart=True)
    for _ in range(3):
        clock.advance(1)
        fake_gaplic._loop()
    fake_gaplic._clearTimeout(cyclic)
    clock.advance(5)
    fake_gaplic._loop()
    assert hits == ["once", "tick", "tick", "tick"]


# ----------------------------------------------------------------------------------------
#   Gobjs, names, settings
# ----------------------------------------------------------------------------------------
def test_duplicate_unique_name_leaves_nothing_half_built(gaplic: GAplic) -> None:
    gaplic.create_gobj("one", Recorder, gaplic, __unique_name__=True)
    with pytest.raises(GObjError, match="already used"):
        gaplic.create_gobj("one", Recorder, gaplic, __unique_name__=True)
    assert [g.name for g in gaplic.dl_childs] == ["one"]
    assert gaplic.get_unique_named_gobjs() == ["one"]


def test_unique_name_is_released_on_destroy(gaplic: GAplic) -> None:
    one = gaplic.create_gobj("one", Recorder, gaplic, __unique_name__=True)
    GObj.destroy_gobj(one)
    assert gaplic.find_unique_gobj("one") is None
    again = gaplic.create_gobj("one", Recorder, gaplic, __unique_name__=True)
    assert gaplic.find_unique_gobj("one") is again


def test_all_unique_names() -> None:
    with GAplic("uniq", all_unique_names="true") as ga:
        rec = ga.create_gobj("rec", Recorder, ga)
        assert ga.find_unique_gobj("rec") is rec


def test_ini_settings_apply_to_every_gobj_and_win_over_kw() -> None:
    with GAplic("ini", **{"port": "7000", "Recorder.label": "cls", "special.label": "mine"}) as ga:
        a = ga.create_gobj("a", Recorder, ga, port=1)
        special = ga.create_gobj("special", Recorder, ga, label="kw")
        assert a.config.port == 7000  # ini wins over kw, converted through GConfig
        assert a.config.label == "cls"
        assert special.config.label == "mine"  # the name beats the class


def test_invalid_ini_value_fails_create_gobj_with_a_clear_message() -> None:
    with (
        GAplic("bad", port="seven") as ga,
        pytest.raises(GConfigValidateError, match=r"Recorder 'x'.*'seven'.*'port'.*int"),
    ):
        ga.create_gobj("x", Recorder, ga)


def test_router_is_not_available() -> None:
    with pytest.raises(GConfigValidateError, match="GRouter"):
        GAplic("r", router_enabled=True)


def test_logger_by_name_reaches_created_gobjs() -> None:
    with GAplic("log", logger="my.app") as ga:
        rec = ga.create_gobj("rec", Recorder, ga)
        assert ga.logger is logging.getLogger("my.app")
        assert rec.logger is ga.logger


def test_use_uvloop_selects_the_loop() -> None:
    with GAplic("std", use_uvloop=False) as ga:
        ga._loop()
        assert type(ga.loop).__module__.startswith("asyncio")
    if gaplic_module.uvloop is not None:
        with GAplic("uv") as ga:
            ga._loop()
            assert type(ga.loop).__module__.startswith("uvloop")


def test_close_destroys_every_gobj_and_is_idempotent() -> None:
    ga = GAplic("closing")
    child = ga.create_gobj("child", Recorder, ga)
    orphan = ga.create_gobj("orphan", Recorder, None)  # no parent: still the GAplic's
    ga._loop()
    ga.close()
    ga.close()
    assert child.went_out and orphan.went_out
    with pytest.raises(GObjError, match="closed"):
        ga.create_gobj("late", Recorder, ga)


def test_loop_property_when_not_running() -> None:
    with GAplic("idle") as ga, pytest.raises(RuntimeError, match="not running"):
        _ = ga.loop


# ----------------------------------------------------------------------------------------
#   Signals (in a subprocess: the handlers are process-wide)
# ----------------------------------------------------------------------------------------
SIGNAL_PROGRAM = textwrap.dedent(
    """
    import sys
    from fsmio import GAplic
    ga = GAplic("sig")
    ga.add_shutdown_callback(lambda: print("SHUTDOWN", flush=True))
    ga.add_callback(lambda: print("READY", flush=True))
    ga.start()
    print("STOPPED", flush=True)
    ga.close()
    """
)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_first_signal_stops_gracefully(sig: signal.Signals) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", SIGNAL_PROGRAM],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "READY"
        os.kill(proc.pid, sig)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert out.split() == ["SHUTDOWN", "STOPPED"]


def test_second_sigint_interrupts_at_once() -> None:
    program = textwrap.dedent(
        """
        import asyncio
        from fsmio import GAplic
        ga = GAplic("stubborn", shutdown_grace=60)
        async def never():
            await asyncio.sleep(3600)
        ga.add_shutdown_callback(never)
        ga.add_callback(lambda: print("READY", flush=True))
        ga.start()
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", program], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "READY"
        os.kill(proc.pid, signal.SIGINT)
        time.sleep(0.3)  # let the first one start the (endless) graceful stop
        started = time.monotonic()
        os.kill(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert time.monotonic() - started < 5
    assert proc.returncode != 0
    assert "KeyboardInterrupt" in err


def test_a_forked_child_cannot_run_the_parents_gaplic() -> None:
    program = textwrap.dedent(
        """
        import os, sys
        from fsmio import GAplic
        ga = GAplic("parent")
        pid = os.fork()
        if pid == 0:
            try:
                ga._loop()
            except RuntimeError as exc:
                os._exit(0 if "forked child" in str(exc) else 2)
            os._exit(1)
        _, status = os.waitpid(pid, 0)
        ga._loop()  # the parent still runs it
        ga.close()
        sys.exit(os.waitstatus_to_exitcode(status))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr


def test_enqueue_from_a_foreign_thread_still_wakes_the_loop() -> None:
    ga = GAplic("foreign")
    rec = ga.create_gobj("rec", Recorder, ga)
    worker = setup_gaplic_thread(ga)
    worker.start()
    try:
        deadline = time.monotonic() + 5
        while not ga.is_running() and time.monotonic() < deadline:
            time.sleep(0.001)
        rec.post_event(rec, "EV_PING", n=1)  # misuse: post_event from another thread
        while not rec.events and time.monotonic() < deadline:
            time.sleep(0.001)
        assert rec.events == [("EV_PING", {"n": 1})]
    finally:
        worker.stop(timeout=5)
        ga.close()


@pytest.mark.parametrize("use_uvloop", [True, False])
def test_an_unclosed_gaplic_collected_with_its_loop_open_warns(use_uvloop: bool) -> None:
    """Reliability catalogue J6: a leak is reported, and the loop it owned is closed."""
    import gc
    import warnings

    ga = GAplic("leaked", use_uvloop=use_uvloop)
    loop = ga._get_own_loop()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del ga
        gc.collect()
    messages = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert any("unclosed GAplic 'leaked'" in m for m in messages), messages
    assert loop.is_closed()


def test_a_closed_or_finished_gaplic_does_not_warn() -> None:
    import gc
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        closed = GAplic("closed")
        closed._get_own_loop()
        closed.close()
        finished = GAplic("finished")
        finished.add_callback(finished.stop)
        finished.start()  # start() closes the loop it made when it returns
        del closed, finished
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]
