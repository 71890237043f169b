"""``WorkerPool``: the bounded pool of threads that run WSGI applications.

The loop never runs application code; it hands a job to ``submit`` only when ``idle()``
says a thread is free (GWsgiServer counts its own jobs), so the pool never holds a queue
of its own.  Threads are started on demand up to ``size`` and are daemon threads: an
application stuck forever in a call cannot keep the process from exiting after the
GAplic stopped (``shutdown`` asks them to stop and does not wait).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

__all__ = ["WorkerPool"]

_LOG = logging.getLogger("fsmio")

Job = Callable[[], None]


class WorkerPool:
    """At most ``size`` threads named ``<name>-<n>`` running submitted jobs."""

    def __init__(self, size: int, name: str = "wsgi") -> None:
        if size < 1:
            raise ValueError(f"WorkerPool: size must be >= 1, not {size!r}")
        self.size = size
        self.name = name
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._busy = 0
        self._lock = threading.Lock()
        self._closed = False

    @property
    def busy(self) -> int:
        """Jobs submitted and not finished."""
        return self._busy

    @property
    def closed(self) -> bool:
        """``shutdown`` was called: no more jobs."""
        return self._closed

    def idle(self) -> bool:
        """Whether a submitted job would start at once."""
        return not self._closed and self._busy < self.size

    def submit(self, job: Job) -> None:
        """Run ``job()`` on a pool thread; RuntimeError after ``shutdown``."""
        with self._lock:
            if self._closed:
                raise RuntimeError(f"WorkerPool {self.name!r} is shut down")
            self._busy += 1
            if len(self._threads) < min(self._busy, self.size):
                thread = threading.Thread(
                    target=self._work, name=f"{self.name}-{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
        self._jobs.put(job)

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            try:
                job()
            except BaseException:  # a job must handle its own errors; never lose the thread
                _LOG.exception("WorkerPool %r: a job raised", self.name)
            finally:
                with self._lock:
                    self._busy -= 1

    def shutdown(self, wait: float = 0.0) -> bool:
        """Stop the threads once their current job ends (waiting at most ``wait`` seconds
        for them); returns whether every thread has ended."""
        with self._lock:
            self._closed = True
            threads = list(self._threads)
        for _ in threads:
            self._jobs.put(None)
        deadline = time.monotonic() + wait
        for thread in threads:
            left = deadline - time.monotonic()
            if left > 0:
                thread.join(left)
        return not any(thread.is_alive() for thread in threads)
