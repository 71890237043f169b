"""GAplics in processes (spawn) and threads, and shutdown() of them all."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from fsmio import GAplic, setup_gaplic_thread
from fsmio.aplic.workers import (
    GAplicProcessWorker,
    get_global_subprocesses,
    get_global_threads,
    setup_gaplic_process,
    shutdown,
)

from .worker_apps import make_marker_gaplic


def wait_for_text(path: Path, text: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not (path.exists() and text in path.read_text()):
        assert time.monotonic() < deadline, f"{path} never said {text!r}"
        time.sleep(0.02)


@pytest.mark.slow
def test_process_worker_runs_a_gaplic_made_in_the_child_and_stops_gracefully(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "marker"
    worker = setup_gaplic_process(make_marker_gaplic, str(marker))
    assert worker in get_global_subprocesses()
    worker.start()
    try:
        wait_for_text(marker, "started")
        assert worker.stop(timeout=10) == 0
        assert marker.read_text() == "started\nstopped\n"  # the shutdown callbacks ran
    finally:
        worker.stop(timeout=1)
        get_global_subprocesses().remove(worker)


@pytest.mark.slow
def test_process_worker_by_name_and_exit_code(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    worker = GAplicProcessWorker(
        "tests.aplic.worker_apps:make_marker_gaplic", str(marker), exit_code=3
    )
    worker.start()
    try:
        wait_for_text(marker, "started")
        assert worker.stop(timeout=10) == 3
    finally:
        worker.stop(timeout=1)


@pytest.mark.slow
def test_a_stuck_process_is_killed_after_the_deadline(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    worker = GAplicProcessWorker("tests.aplic.worker_apps:make_stuck_gaplic", str(marker))
    worker.start()
    try:
        wait_for_text(marker, "blocked")
        started = time.monotonic()
        assert worker.stop(timeout=0.5) == -signal.SIGKILL
        assert time.monotonic() - started < 5
    finally:
        worker.stop(timeout=1)


def test_a_gaplic_instance_cannot_cross_the_process_boundary() -> None:
    gaplic = GAplic("here")
    try:
        with pytest.raises(TypeError, match="pass a factory"):
            setup_gaplic_process(gaplic)
    finally:
        gaplic.close()


@pytest.mark.slow
def test_a_factory_that_returns_no_gaplic_fails_the_child(tmp_path: Path) -> None:
    worker = GAplicProcessWorker("tests.aplic.worker_apps:not_a_gaplic")
    worker.start()
    worker.join(30)
    assert worker.exitcode == 1


@pytest.mark.slow
def test_shutdown_stops_threads_and_processes(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    thread_gaplic = GAplic("threaded")
    thread_worker = setup_gaplic_thread(thread_gaplic)
    assert thread_worker in get_global_threads()
    process_worker = setup_gaplic_process(make_marker_gaplic, str(marker))
    thread_worker.start()
    process_worker.start()
    try:
        wait_for_text(marker, "started")
        assert shutdown(timeout=10) == []
        assert not thread_worker.is_alive()
        assert process_worker.exitcode == 0
        assert marker.read_text() == "started\nstopped\n"
        assert not get_global_threads() and not get_global_subprocesses()
    finally:
        thread_worker.stop(1)
        process_worker.stop(1)
        thread_gaplic.close()


def test_post_event_from_outside_between_threads_keeps_order() -> None:
    from fsmio import GObj

    received: list[int] = []

    def ac_num(self: GObj, event: object) -> None:
        received.append(event.n)  # type: ignore[attr-defined]

    class Sink(GObj):
        def __init__(self) -> None:
            GObj.__init__(
                self,
                {
                    "event_list": ("EV_NUM: top input",),
                    "state_list": ("ST_IDLE",),
                    "machine": {"ST_IDLE": (("EV_NUM", ac_num, None),)},
                },
            )

    target = GAplic("order-target")
    target.create_gobj("sink", Sink, None, __unique_name__=True)
    worker = setup_gaplic_thread(target)
    worker.start()
    senders = []
    try:
        total = 5000

        def send_all() -> None:
            for n in range(total):
                GObj.post_event_from_outside("order-target", "sink", "EV_NUM", n=n)

        # The posts come from another GAplic's loop thread, as in a program.
        senders.append(GAplic("order-sender"))
        sender_worker = setup_gaplic_thread(senders[0])
        sender_worker.start()
        senders[0].add_callback(send_all)
        deadline = time.monotonic() + 20
        while len(received) < total and time.monotonic() < deadline:
            time.sleep(0.01)
        assert received == list(range(total))
        sender_worker.stop()
    finally:
        worker.stop()
        target.close()
        for sender in senders:
            sender.close()
