"""GAplics in threads and in processes, and stopping them all: ginsfsm's workers.

* ``setup_gaplic_thread(gaplic)`` (in ``gaplic.py``) → a ``GAplicThreadWorker``,
  registered here; ``get_global_threads()`` lists them.
* ``setup_gaplic_process(factory, *args, **kw)`` → a ``GAplicProcessWorker``: a process
  started with the ``spawn`` method (no dependence on ``fork``) in which
  ``factory(*args, **kw)`` makes the GAplic and runs it.  ``get_global_subprocesses()``
  lists them.  Call ``.start()`` on a worker, as in ginsfsm.
* ``shutdown(timeout)`` stops every registered worker — and the main GAplic — gracefully
  (``stop()``; SIGTERM for a process), waits until ``timeout``, then stops the processes
  still alive hard (SIGKILL).  It runs at exit (``atexit``), as ginsfsm's did.

Why a factory and not a GAplic (ginsfsm's ``setup_gaplic_process(gaplic)``): ginsfsm
forked, and the child ran the parent's GAplic object with the parent's poller.  A
GAplic owns a loop, sockets and threads' state that cannot cross a process boundary —
not by ``fork`` (fsmio refuses to run a GAplic in a forked child) and not by pickling
(``spawn``, the default on macOS and Windows, and from Python 3.14 on Linux).  So the
child builds its own: ``factory`` is a picklable callable (a module-level function or
class) or a ``"package.module:function"`` string, and returns a GAplic.  Passing a GAplic
is a ``TypeError`` that says so.

Theory of operation (a process worker): the child installs a SIGTERM handler before it
calls the factory, so a stop that arrives while the GAplic is being made is not lost:
the GAplic is stopped before it starts.  Once running, ``GAplic.start()`` handles SIGTERM
itself (a graceful stop with its ``shutdown_grace``).  The child closes the GAplic before
it exits; its exit code is the GAplic's ``exit_code``.
"""

from __future__ import annotations

import atexit
import collections
import importlib
import logging
import multiprocessing
import multiprocessing.context
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from fsmio.aplic.gaplic import GAplic, GAplicThreadWorker
from fsmio.core import registry

__all__ = [
    "GAplicProcessWorker",
    "add_global_subprocess",
    "add_global_thread",
    "get_global_subprocesses",
    "get_global_threads",
    "setup_gaplic_process",
    "shutdown",
]

_LOG = logging.getLogger("fsmio")
#: Seconds between the SIGTERMs of a graceful stop.
_RESEND = 0.5
_lock = threading.Lock()
_threads: collections.deque[GAplicThreadWorker] = collections.deque()
_subprocesses: collections.deque[GAplicProcessWorker] = collections.deque()


def add_global_thread(worker: GAplicThreadWorker) -> None:
    """Register a thread worker (``setup_gaplic_thread`` does it)."""
    with _lock:
        _threads.append(worker)


def get_global_threads() -> collections.deque[GAplicThreadWorker]:
    """The registered thread workers (ginsfsm's deque)."""
    return _threads


def add_global_subprocess(worker: GAplicProcessWorker) -> None:
    """Register a process worker (``setup_gaplic_process`` does it)."""
    with _lock:
        _subprocesses.append(worker)


def get_global_subprocesses() -> collections.deque[GAplicProcessWorker]:
    """The registered process workers (ginsfsm's deque)."""
    return _subprocesses


def _resolve(factory: Any) -> Callable[..., Any]:
    if isinstance(factory, str):
        module_name, colon, attr = factory.partition(":")
        if not colon or not attr:
            raise ValueError(f"factory {factory!r}: expected 'package.module:function'")
        target = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
        factory = target
    if not callable(factory):
        raise TypeError(f"factory {factory!r} is not callable")
    resolved: Callable[..., Any] = factory
    return resolved


class GAplicProcessWorker(multiprocessing.context.SpawnProcess):
    """A spawned process in which ``factory(*args, **kw)`` makes a GAplic and runs it.

    ``join()`` waits 10 s by default (ginsfsm's); ``stop(timeout)`` stops it gracefully
    (SIGTERM), then hard (SIGKILL) after ``timeout``, and returns the exit code.
    """

    def __init__(self, factory: Any, *args: Any, name: str | None = None, **kw: Any) -> None:
        if isinstance(factory, GAplic):
            raise TypeError(
                f"GAplicProcessWorker: GAplic {factory.name!r} cannot be moved into another "
                "process (its loop and sockets belong to this one): pass a factory that "
                "makes it there, e.g. setup_gaplic_process('package.module:make_gaplic')"
            )
        if not isinstance(factory, str) and not callable(factory):
            raise TypeError(f"GAplicProcessWorker: factory {factory!r} is not callable")
        label = name or (factory if isinstance(factory, str) else getattr(factory, "__name__", ""))
        super().__init__(name=f"gaplic-{label}", daemon=True)
        self.factory = factory
        self.factory_args = args
        self.factory_kw = kw

    def run(self) -> None:
        """In the child: make the GAplic, run it until stopped, close it."""
        made: list[GAplic] = []
        stop_requested = threading.Event()

        def on_sigterm(signum: int, frame: FrameType | None) -> None:
            stop_requested.set()
            for gaplic in made:
                gaplic.stop()

        signal.signal(signal.SIGTERM, on_sigterm)
        gaplic = _resolve(self.factory)(*self.factory_args, **self.factory_kw)
        if not isinstance(gaplic, GAplic):
            raise TypeError(f"factory {self.factory!r} returned {gaplic!r}, not a GAplic")
        made.append(gaplic)
        if stop_requested.is_set():
            gaplic.stop()
        try:
            gaplic.start()
        finally:
            # Stopped: a repeated SIGTERM (see stop()) must not cut the close short.
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            gaplic.close()
        if gaplic.exit_code:
            raise SystemExit(gaplic.exit_code)

    def join(self, timeout: float | None = 10.0) -> None:
        super().join(timeout)

    def stop(self, timeout: float = 10.0) -> int | None:
        """Stop gracefully (SIGTERM), hard (SIGKILL) after ``timeout``; the exit code."""
        if self.pid is None:
            return None
        deadline = time.monotonic() + timeout
        while self.exitcode is None and time.monotonic() < deadline:
            # Again every half second: a SIGTERM that lands while the child's loop is
            # installing its handlers can be lost (asyncio and uvloop alike).
            self.terminate()
            super().join(max(0.0, min(_RESEND, deadline - time.monotonic())))
        if self.exitcode is None:
            _LOG.warning("%s did not stop in %.1f s: killed", self.name, timeout)
            self.kill()
            super().join(timeout)
        return self.exitcode


def setup_gaplic_process(factory: Any, *args: Any, **kw: Any) -> GAplicProcessWorker:
    """A (not yet started) process worker whose GAplic ``factory(*args, **kw)`` makes in
    the child; registered for ``shutdown()``.  Call ``.start()`` on it."""
    worker = GAplicProcessWorker(factory, *args, **kw)
    add_global_subprocess(worker)
    return worker


def shutdown(timeout: float = 5.0) -> list[str]:
    """Stop every registered worker and the main GAplic: gracefully, then hard.

    All are asked at once; then each is waited for until ``timeout`` seconds from the
    call.  Processes still alive are killed.  A thread cannot be killed: one still alive
    is logged (it is a daemon thread, so it does not keep the process alive).  Returns
    the names of the workers that did not stop gracefully.
    """
    deadline = time.monotonic() + timeout
    with _lock:
        threads = list(_threads)
        processes = list(_subprocesses)
        _threads.clear()
        _subprocesses.clear()
    for thread in threads:
        thread.gaplic.stop()
    for process in processes:
        if process.pid is not None and process.exitcode is None:
            process.terminate()
    main = registry.get_global_main_gaplic()
    if main is not None:
        main.stop()
    while time.monotonic() < deadline and any(
        process.pid is not None and process.exitcode is None for process in processes
    ):
        time.sleep(min(_RESEND, max(0.0, deadline - time.monotonic())))
        for process in processes:  # again: see GAplicProcessWorker.stop()
            if process.pid is not None and process.exitcode is None:
                process.terminate()
    not_graceful: list[str] = []
    for thread in threads:
        if thread.is_alive():
            thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            _LOG.warning("shutdown(): thread %s still running after %.1f s", thread.name, timeout)
            not_graceful.append(thread.name)
    for process in processes:
        if process.pid is None:
            continue
        process.join(max(0.0, deadline - time.monotonic()))
        if process.exitcode is None:
            _LOG.warning("shutdown(): process %s killed after %.1f s", process.name, timeout)
            process.kill()
            process.join(timeout)
            not_graceful.append(process.name)
    return not_graceful


atexit.register(shutdown)
