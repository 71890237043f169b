"""``GAplic``: the root gobj of a thread or process, running its gobjs on an asyncio loop.

Configuration (``GAplic(name=None, roles=None, **ini_settings)``; every ``ini_settings``
entry is also applied, by its dotted name, to every gobj the GAplic creates):

=================  =====  =======  ==========================================================
name               type   default  description
=================  =====  =======  ==========================================================
use_uvloop         bool   True     Run on uvloop when it is installed (else stdlib asyncio).
all_unique_names   bool   False    Register the name of every created gobj as unique.
strict_events      bool   False    Raise ``EventNotAcceptedError`` instead of returning it.
shutdown_grace     float  5.0      Seconds that stop() gives shutdown callbacks to finish.
clock              None   None     Monotonic clock in seconds (tests pass a fake one).
router_enabled     bool   False    ginsfsm's GRouter; replaced by GRemote (True is an error).
=================  =====  =======  ==========================================================

No input or output events.

Theory of operation
-------------------
The GAplic keeps its own work — the post-event queue, callbacks added with
``add_callback``, and a heap of timers on its monotonic clock — and hands it to an asyncio
loop only while *bound* to one: when it runs (``start()``, ``await run()``) or is driven by
``_loop()``.  Work queued before that (events posted from ``start_up``, timers armed by a
GTimer) waits in those structures and is scheduled when the loop binds.

* The queue is drained by one ``call_soon`` callback: it runs the callbacks and delivers
  the events that were queued *when it started*, then, if more were queued meanwhile,
  schedules itself again — for the next iteration, after the I/O poll, so a chain of
  posted events cannot starve the sockets.  There is no per-pass quota and no sleep.
* The timer heap arms one asyncio timer for its earliest deadline, in whole milliseconds
  rounded up (a timer runs up to 1 ms late, never early, and the loop never spins waiting
  for a deadline uvloop cannot time finer than a millisecond).  Expired timers are
  collected first and run after, so a timer re-armed with a zero delay from its own
  callback waits for the next iteration.  Cancelled entries are dropped lazily and the heap
  is rebuilt when they outnumber the live ones.
* ``_loop()`` is one iteration: asyncio's own ``stop(); run_forever()`` (ready callbacks
  and an I/O poll with a zero timeout), then the timers that are due on the GAplic's clock
  — which makes tests with a fake clock exact.

An exception escaping an action, a callback or a timer run from the loop is logged once,
with the gobj, state and event of the action that raised, and the loop goes on.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import heapq
import itertools
import logging
import math
import os
import signal
import threading
import time
import warnings
from collections.abc import Awaitable, Callable
from typing import Any, Final, cast

from fsmio.core import registry
from fsmio.core.errors import GConfigValidateError, GObjError
from fsmio.core.event import Event
from fsmio.core.gconfig import FLAG_DIRECT_ATTR, finite_number, non_negative_number
from fsmio.core.gobj import GObj, build_gobj
from fsmio.core.smachine import EMPTY_FSM, DispatchContext, exception_where

try:  # pragma: no cover - depends on the platform
    import uvloop as _uvloop

    uvloop: Any = _uvloop
except ImportError:  # pragma: no cover
    uvloop = None

__all__ = [
    "GAPLIC_GCONFIG",
    "Callback",
    "GAplic",
    "GAplicThreadWorker",
    "TimerHandle",
    "gaplic_factory",
    "get_gaplic_by_thread_ident",
    "setup_gaplic_thread",
]

_LOG = logging.getLogger("fsmio")


def _no_router(value: Any) -> Any:
    if value not in (None, False) and str(value).strip().lower() not in (
        "0",
        "false",
        "no",
        "off",
        "",
    ):
        raise ValueError(
            "ginsfsm's GRouter is replaced by NATS: create a fsmio.remote.GRemote gobj "
            '(TOML: [[gobj]] name = "router", gclass = "fsmio.remote:GRemote", with '
            "config servers, subject_prefix, credentials, ssl_options); see docs/remote.md"
        )
    return value


GAPLIC_GCONFIG: Final[dict[str, list[Any]]] = {
    "use_uvloop": [bool, True, 0, None, "Run on uvloop when it is installed."],
    "all_unique_names": [bool, False, 0, None, "Register the name of every created gobj."],
    "shutdown_grace": [
        float,
        5.0,
        0,
        non_negative_number,
        "Seconds that stop() gives the shutdown callbacks to finish.",
    ],
    "clock": [None, None, FLAG_DIRECT_ATTR, None, "Monotonic clock (seconds); tests fake it."],
    "router_enabled": [bool, False, 0, _no_router, "ginsfsm GRouter (replaced by GRemote)."],
}

# Rebuild the timer heap when this many cancelled entries are in it and they are more
# than the live ones.
_CANCELLED_TIMERS_REBUILD: Final = 256


class TimerHandle:
    """A timer armed on a GAplic; ``cancel()`` it to make sure it never runs."""

    __slots__ = ("_gaplic", "_in_heap", "args", "callback", "cancelled", "deadline", "done")

    def __init__(
        self,
        gaplic: GAplic,
        deadline: float,
        callback: Callable[..., Any],
        args: tuple[Any, ...],
    ) -> None:
        self._gaplic = gaplic
        self.deadline = deadline
        self.callback = callback
        self.args = args
        self.cancelled = False
        self.done = False
        self._in_heap = True

    def cancel(self) -> None:
        """Never run it (nothing happens if it already ran or was cancelled)."""
        if not self.cancelled and not self.done:
            self.cancelled = True
            self._gaplic._timer_cancelled(self._in_heap)

    def __repr__(self) -> str:
        state = "cancelled" if self.cancelled else "done" if self.done else "armed"
        return f"<TimerHandle {state} at {self.deadline:.6f} {self.callback!r}>"


def _read_outcome(future: asyncio.Future[Any]) -> None:
    """Mark ``future``'s outcome as read (see ``GAplic._shutdown``)."""
    if not future.cancelled():
        future.exception()


class GAplic(GObj):
    """The root gobj of a thread or process; owns the queue, the timers and the loop.

    ``GAplic(name=None, roles=None, **ini_settings)``.  See the module documentation.
    """

    clock: Callable[[], float] | None

    def __init__(self, name: str | None = None, roles: Any = None, **ini_settings: Any) -> None:
        GObj.__init__(self, EMPTY_FSM, GAPLIC_GCONFIG)
        # The nesting depth of dispatch is per GAplic (one thread), shared by its gobjs.
        self._ctx = DispatchContext()
        self.__name__ = name or ""
        self.roles: tuple[str, ...] = (roles,) if isinstance(roles, str) else tuple(roles or ())
        logger = ini_settings.pop("logger", None)
        self.logger = logging.getLogger(logger) if isinstance(logger, str) else (logger or _LOG)
        self.ini_settings: dict[str, Any] = dict(ini_settings)
        self.gaplic = self
        self.do_exit = threading.Event()
        self._qevent: collections.deque[Event] = collections.deque()
        self._callbacks: collections.deque[
            tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]
        ] = collections.deque()
        self._unique_named_gobjs: dict[str, GObj] = {}
        #: The gobj carrying events to other GAplics (a fsmio.remote.GRemote), or None.
        self.router: Any = None
        #: The live sockets of this GAplic, {fd: gobj} (ginsfsm's name; filled by GSock
        #: and GServerSock): what ``close_all_sockets(gaplic._socket_map)`` closes.
        self._socket_map: dict[int, GObj] = {}
        self._roots: dict[GObj, None] = {}
        self._timers: list[tuple[float, int, TimerHandle]] = []
        self._timer_seq = itertools.count()
        self._live_timers = 0
        self._cancelled_timers = 0
        self._aio_loop: asyncio.AbstractEventLoop | None = None
        self._own_loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._pending_handle: asyncio.Handle | None = None
        self._timer_handle: asyncio.TimerHandle | None = None
        self._timer_handle_deadline = math.inf
        self._stop_future: asyncio.Future[None] | None = None
        self._shutdown_callbacks: list[Callable[[], Any]] = []
        self._late_shutdown_callbacks: list[Callable[[], Any]] = []
        self._closed = False
        #: The exit status a runner (``fsmio run``) reports when the GAplic has stopped:
        #: a gobj sets it (before ``stop()``) to say the program failed.
        self.exit_code = 0
        self._pid = os.getpid()
        self.write_parameters(**self.filter_parameters(**self.ini_settings))
        self._clock: Callable[[], float] = self.clock or time.monotonic
        registry.register_gaplic(self)
        self.start_up()

    # ------------------------------------------------------------------------------------
    #   Gobjs
    # ------------------------------------------------------------------------------------
    def create_gobj(
        self, name: str | None, gclass: type[GObj], parent: GObj | None, **kw: Any
    ) -> Any:
        """Create a gobj that belongs to this GAplic (see ``GObj.create_gobj``).

        The GAplic gives it its ``gaplic`` and ``logger``, marks its name unique when
        ``all_unique_names`` is on, and writes the ``ini_settings`` that apply to it after
        ``kw`` (so they win).
        """
        if self._closed:
            raise GObjError(f"create_gobj(): GAplic {self.name!r} is closed")
        if self.config.all_unique_names:
            kw.setdefault("__unique_name__", True)
        return build_gobj(name, gclass, parent, kw, self)

    def find_unique_gobj(self, name: str) -> GObj | None:
        """The live gobj registered under the unique ``name``, or None."""
        return self._unique_named_gobjs.get(name)

    def get_unique_named_gobjs(self) -> list[str]:
        """The registered unique names, in registration order."""
        return list(self._unique_named_gobjs)

    def _check_unique_name(self, gobj: GObj) -> None:
        name = gobj.name
        if not name:
            raise GObjError(f"create_gobj(): a unique gobj of {type(gobj).__name__} needs a name")
        if name in self._unique_named_gobjs:
            raise GObjError(
                f"create_gobj(): unique name {name!r} is already used by "
                f"{self._unique_named_gobjs[name]!r}"
            )

    def _register_unique_gobj(self, gobj: GObj) -> None:
        self._check_unique_name(gobj)
        self._unique_named_gobjs[gobj.name] = gobj

    def _adopt_gobj(self, gobj: GObj) -> None:
        if gobj.__unique_name__:
            self._register_unique_gobj(gobj)
        if gobj.parent is None:
            self._roots[gobj] = None

    def _forget_gobj(self, gobj: GObj) -> None:
        if self._unique_named_gobjs.get(gobj.name) is gobj:
            del self._unique_named_gobjs[gobj.name]
        self._roots.pop(gobj, None)

    # ------------------------------------------------------------------------------------
    #   Events to other GAplics (through the GRemote gobj of fsmio.remote, if any)
    # ------------------------------------------------------------------------------------
    def _router(self, what: str) -> Any:
        router = self.router
        if router is None:
            raise GObjError(
                f"{what}: GAplic {self.name!r} has no remote events: create a "
                "fsmio.remote.GRemote gobj (see docs/remote.md)"
            )
        return router

    def send_event_outside(
        self,
        gaplic_name: str,
        role: str,
        gobj_name: str,
        event_name: str,
        subscriber_gobj: Any,
        origin_role: str | None = None,
        **kw: Any,
    ) -> Any:
        """Send ``event_name`` to the unique gobj ``gobj_name`` of the GAplic
        ``gaplic_name`` (or, if that is empty, of one GAplic with the ``role``).

        kw ``__subscribe_response__=True`` asks for the remote action's return value: it
        comes back to ``subscriber_gobj`` as the same event with kw ``__action_return__``
        (and ``__error__``); ``__all_members__=True`` sends to every member of the role;
        ``__durable__=True`` sends at least once (JetStream).  See docs/remote.md.
        """
        return self._router("send_event_outside()").mt_send_event_outside(
            gaplic_name, role, gobj_name, event_name, subscriber_gobj, origin_role, **kw
        )

    def subscribe_event_outside(
        self,
        gaplic_name: str,
        role: str,
        gobj_name: str,
        event_name: str | None,
        subscriber_gobj: Any,
        origin_role: str | None = None,
        **kw: Any,
    ) -> Any:
        """Deliver to ``subscriber_gobj`` the broadcasts of ``event_name`` (None: every
        event) of the exported gobj ``gobj_name`` of the GAplic ``gaplic_name``."""
        return self._router("subscribe_event_outside()").mt_subscribe_event_outside(
            gaplic_name, role, gobj_name, event_name, subscriber_gobj
        )

    def unsubscribe_event_outside(
        self,
        gaplic_name: str,
        role: str,
        gobj_name: str,
        event_name: str | None,
        subscriber_gobj: Any,
        **kw: Any,
    ) -> Any:
        """Undo ``subscribe_event_outside`` (same arguments)."""
        return self._router("unsubscribe_event_outside()").mt_unsubscribe_event_outside(
            gaplic_name, role, gobj_name, event_name, subscriber_gobj
        )

    # ------------------------------------------------------------------------------------
    #   The queue and the callbacks
    # ------------------------------------------------------------------------------------
    def enqueue_event(self, event: Event) -> None:
        """Queue ``event`` (from this GAplic's thread); delivered in FIFO order."""
        self._qevent.append(event)
        if self._pending_handle is None and self._aio_loop is not None:
            if self._loop_thread == threading.get_ident():
                self._pending_handle = self._aio_loop.call_soon(self._run_pending)
            else:  # a post from a foreign thread must not touch the loop unsafely
                self._wake_threadsafe()

    def enqueue_event_threadsafe(self, event: Event) -> None:
        """Queue ``event`` from any thread, and wake the loop."""
        self._qevent.append(event)
        self._wake_threadsafe()

    def add_callback(self, callback: Callable[..., Any], *args: Any, **kw: Any) -> None:
        """Run ``callback(*args, **kw)`` in the next loop iteration (thread-safe)."""
        self._callbacks.append((callback, args, kw))
        if self._loop_thread == threading.get_ident():
            self._wake()
        else:
            self._wake_threadsafe()

    def _wake(self) -> None:
        if self._pending_handle is None and self._aio_loop is not None:
            self._pending_handle = self._aio_loop.call_soon(self._run_pending)

    def _wake_threadsafe(self) -> None:
        loop = self._aio_loop
        if loop is None:
            return  # bound later: _bind schedules what is queued
        # RuntimeError: the loop closed meanwhile; the work waits for the next one.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._wake)

    def _run_pending(self) -> None:
        self._pending_handle = None
        callbacks = self._callbacks
        for _ in range(len(callbacks)):
            callback, args, kw = callbacks.popleft()
            try:
                callback(*args, **kw)
            except Exception as exc:
                self.handle_exception(exc, f"callback {callback!r}")
        queue = self._qevent
        popleft = queue.popleft
        deliver = self._deliver_queued
        for _ in range(len(queue)):
            event = popleft()
            dst = event.destination
            if type(dst) is str or dst._destroyed:
                deliver(event)  # resolves the name, or drops it
                continue
            # _deliver_queued(), inlined for the common case: a live gobj.
            try:
                dst.inject_event(event)
            except Exception as exc:
                self.handle_exception(exc, f"{dst!r}, event {event.event_name}")
        if queue or callbacks:
            self._wake()

    def _deliver_queued(self, event: Event) -> None:
        dst = event.destination
        if type(dst) is str:
            found = self._unique_named_gobjs.get(dst)
            if found is None:
                (self.logger or _LOG).error(
                    "queued event %s: no unique gobj named %r; dropped", event.event_name, dst
                )
                return
            event.destination = dst = found
        if dst._destroyed:
            (self.logger or _LOG).debug(
                "queued event %s for destroyed gobj %r dropped", event.event_name, dst
            )
            return
        try:
            dst.inject_event(event)
        except Exception as exc:
            self.handle_exception(exc, f"{dst!r}, event {event.event_name}")

    def handle_exception(self, exc: BaseException, context: str) -> None:
        """Log an exception that escaped an action or callback run from the loop (once).

        Override to change what happens; the loop goes on either way.
        """
        where = exception_where(exc) or context
        (self.logger or _LOG).error("exception in the action of %s: %r", where, exc, exc_info=exc)

    # ------------------------------------------------------------------------------------
    #   Timers
    # ------------------------------------------------------------------------------------
    def time(self) -> float:
        """Now, on the GAplic's monotonic clock (seconds)."""
        return self._clock()

    def call_at(self, deadline: float, callback: Callable[..., Any], *args: Any) -> TimerHandle:
        """Run ``callback(*args)`` at ``deadline`` on ``time()``'s clock."""
        handle = TimerHandle(self, deadline, callback, args)
        heapq.heappush(self._timers, (deadline, next(self._timer_seq), handle))
        self._live_timers += 1
        if deadline < self._timer_handle_deadline:
            self._arm_timer_handle()
        return handle

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> TimerHandle:
        """Run ``callback(*args)`` in ``delay`` seconds (a negative delay means now)."""
        return self.call_at(self._clock() + delay, callback, *args)

    def add_timeout(self, seconds: float, callback: Callable[..., Any]) -> TimerHandle:
        """ginsfsm/tornado name: run ``callback()`` in ``seconds`` (relative) seconds."""
        return self.call_later(seconds, callback)

    def remove_timeout(self, timeout: Any) -> None:
        """Cancel a timer made by ``add_timeout`` (or any handle with ``cancel()``)."""
        timeout.cancel()

    def _setTimeout(
        self, seconds: float, callback: Callable[..., Any], autostart: bool = False
    ) -> Any:
        """ginsfsm's timer: once, or every ``seconds`` with ``autostart``."""
        if autostart:
            periodic = Callback(callback, seconds, self)
            periodic.start()
            return periodic
        return self.call_later(seconds, callback)

    def _clearTimeout(self, xtimer: Any) -> None:
        xtimer.cancel()

    def _timer_cancelled(self, in_heap: bool) -> None:
        self._live_timers -= 1
        if not in_heap:  # taken out by _process_timers, about to be skipped
            return
        self._cancelled_timers += 1
        if self._cancelled_timers > _CANCELLED_TIMERS_REBUILD and self._cancelled_timers * 2 > len(
            self._timers
        ):
            self._timers = [entry for entry in self._timers if not entry[2].cancelled]
            heapq.heapify(self._timers)
            self._cancelled_timers = 0

    def _arm_timer_handle(self) -> None:
        heap = self._timers
        while heap and heap[0][2].cancelled:
            heapq.heappop(heap)
            self._cancelled_timers -= 1
        handle = self._timer_handle
        if not heap:
            if handle is not None:
                handle.cancel()
                self._timer_handle = None
            self._timer_handle_deadline = math.inf
            return
        loop = self._aio_loop
        deadline = heap[0][0]
        if loop is None or (handle is not None and self._timer_handle_deadline <= deadline):
            return
        if handle is not None:
            handle.cancel()
        self._timer_handle_deadline = deadline
        delay = deadline - self._clock()
        if delay > 0.0:
            # Whole milliseconds, rounded up: uvloop rounds a delay to the millisecond
            # (under half a one it is call_soon) and counts it from a millisecond clock,
            # so a finer delay wakes the loop before the deadline, _process_timers finds
            # nothing due and arms again: a busy loop until the deadline (100 wake-ups
            # per timer when they fall due 100 000 a second).  Costs at most 1 ms late.
            delay = math.ceil(delay * 1000.0) / 1000.0
        self._timer_handle = loop.call_later(max(0.0, delay), self._process_timers)

    def _process_timers(self) -> None:
        if self._timer_handle is not None:
            self._timer_handle.cancel()
            self._timer_handle = None
        self._timer_handle_deadline = math.inf
        heap = self._timers
        now = self._clock()
        due: list[TimerHandle] = []
        while heap and heap[0][0] <= now:
            handle = heapq.heappop(heap)[2]
            handle._in_heap = False
            if handle.cancelled:
                self._cancelled_timers -= 1
            else:
                due.append(handle)
        for handle in due:
            if handle.cancelled:  # cancelled by an earlier callback of this batch
                continue
            handle.done = True
            self._live_timers -= 1
            try:
                handle.callback(*handle.args)
            except Exception as exc:
                self.handle_exception(exc, f"timer {handle.callback!r}")
        self._arm_timer_handle()

    # ------------------------------------------------------------------------------------
    #   The loop
    # ------------------------------------------------------------------------------------
    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The asyncio loop the GAplic is running on (RuntimeError when it is not)."""
        if self._aio_loop is None:
            raise RuntimeError(f"GAplic {self.name!r} is not running on an event loop")
        return self._aio_loop

    def is_running(self) -> bool:
        """Whether ``start()`` or ``run()`` is running (``_loop()`` does not count)."""
        return self._stop_future is not None

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        """A new loop: uvloop's when installed and ``use_uvloop``, else asyncio's."""
        if uvloop is not None and self.config.use_uvloop:
            return cast(asyncio.AbstractEventLoop, uvloop.new_event_loop())
        return asyncio.new_event_loop()

    def _get_own_loop(self) -> asyncio.AbstractEventLoop:
        if self._own_loop is None or self._own_loop.is_closed():
            self._own_loop = self.new_event_loop()
        return self._own_loop

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._aio_loop is loop:
            return
        if self._aio_loop is not None:
            raise RuntimeError(
                f"GAplic {self.name!r} is bound to another event loop; "
                "a GAplic runs on one loop at a time"
            )
        if self._closed:
            raise RuntimeError(f"GAplic {self.name!r} is closed")
        if os.getpid() != self._pid:
            # J4: a forked child must not run (and flush) the parent's gobjs and buffers.
            raise RuntimeError(
                f"GAplic {self.name!r} was created in process {self._pid}; "
                "it cannot run in a forked child: create a new GAplic there"
            )
        self._aio_loop = loop
        self._loop_thread = threading.get_ident()
        if self._qevent or self._callbacks:
            self._wake()
        self._timer_handle_deadline = math.inf
        self._arm_timer_handle()

    def _unbind(self) -> None:
        for handle in (self._pending_handle, self._timer_handle):
            if handle is not None:
                handle.cancel()
        self._pending_handle = None
        self._timer_handle = None
        self._timer_handle_deadline = math.inf
        self._aio_loop = None
        self._loop_thread = None

    def _loop(self) -> bool:
        """Run one iteration: callbacks, queued events, an I/O poll, due timers.

        Returns whether work remains (queued events or callbacks, or armed timers).  For
        tests and for programs that drive the GAplic themselves.
        """
        loop = self._aio_loop
        if loop is None:
            loop = self._get_own_loop()
            self._bind(loop)
        elif loop is not self._own_loop or loop.is_running():
            raise RuntimeError("_loop() drives the GAplic's own loop; it is running elsewhere")
        loop.stop()
        loop.run_forever()
        self._process_timers()
        self.mt_subprocess()
        return bool(self._qevent or self._callbacks or self._live_timers)

    def mt_subprocess(self) -> None:
        """Hook called once per ``_loop()`` iteration (not under ``start()``/``run()``)."""

    async def run(self) -> None:
        """Run on the running asyncio loop until ``stop()``.  For asyncio programs."""
        loop = asyncio.get_running_loop()
        if self._aio_loop is not None and self._aio_loop is not loop:
            self._unbind_own_loop_if_idle()
        self._bind(loop)
        future: asyncio.Future[None] = loop.create_future()
        self._stop_future = future
        if self.do_exit.is_set():
            future.set_result(None)
        try:
            await future
            await self._shutdown()
        finally:
            self._stop_future = None
            self.do_exit.clear()
            self._unbind()

    def _unbind_own_loop_if_idle(self) -> None:
        if self._aio_loop is self._own_loop and self._own_loop is not None:
            if self._own_loop.is_running():
                return
            self._unbind()

    def start(self) -> None:
        """Run until ``stop()`` (from any thread), SIGINT or SIGTERM.  Blocking.

        In the main thread, the first SIGINT or SIGTERM stops the GAplic gracefully; a
        second SIGINT raises KeyboardInterrupt at once.
        """
        if self._aio_loop is not None and self._aio_loop is not self._own_loop:
            raise RuntimeError(f"GAplic {self.name!r} is running on another event loop")
        if self._aio_loop is not None:
            self._unbind()
        loop = self._get_own_loop()
        installed: list[signal.Signals] = []
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                try:
                    loop.add_signal_handler(sig, self._on_signal, sig, loop)
                    installed.append(sig)
                except (NotImplementedError, RuntimeError, ValueError):  # pragma: no cover
                    pass
        task = loop.create_task(self.run())
        try:
            loop.run_until_complete(task)
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
            if not task.done():
                task.cancel()
                loop.run_until_complete(asyncio.gather(task, return_exceptions=True))
            self._close_own_loop()

    def _on_signal(self, sig: signal.Signals, loop: asyncio.AbstractEventLoop) -> None:
        (self.logger or _LOG).info(
            "GAplic %r: %s received, stopping", self.name, signal.Signals(sig).name
        )
        if sig == signal.SIGINT:
            # A second Ctrl-C gets Python's default: KeyboardInterrupt, at once.
            loop.remove_signal_handler(sig)
        self.stop()

    def stop(self) -> None:
        """Ask the GAplic to stop (thread-safe; before ``start()`` it makes it return)."""
        self.do_exit.set()
        loop = self._aio_loop
        if loop is None:
            return
        if self._loop_thread == threading.get_ident():
            self._request_stop()
        else:
            with contextlib.suppress(RuntimeError):  # closed meanwhile
                loop.call_soon_threadsafe(self._request_stop)

    def _request_stop(self) -> None:
        future = self._stop_future
        if future is not None and not future.done():
            future.set_result(None)

    def add_shutdown_callback(
        self, callback: Callable[[], Awaitable[Any] | None], *, late: bool = False
    ) -> None:
        """Call ``callback()`` when the GAplic stops; an awaitable it returns is awaited,
        all of them together within ``shutdown_grace`` seconds.  Callbacks are called in
        the order they were added, ``late`` ones after all the others (the sockets close
        late: the protocols above them first decide which connections they finish
        themselves)."""
        if late:
            self._late_shutdown_callbacks.append(callback)
        else:
            self._shutdown_callbacks.append(callback)

    def remove_shutdown_callback(self, callback: Callable[[], Awaitable[Any] | None]) -> None:
        """Forget a callback given to ``add_shutdown_callback`` (no error if absent)."""
        for callbacks in (self._shutdown_callbacks, self._late_shutdown_callbacks):
            with contextlib.suppress(ValueError):
                callbacks.remove(callback)

    async def _shutdown(self) -> None:
        waits: list[Awaitable[Any]] = []
        for callback in [*self._shutdown_callbacks, *self._late_shutdown_callbacks]:
            try:
                result = callback()
            except Exception as exc:
                self.handle_exception(exc, f"shutdown callback {callback!r}")
                continue
            if result is not None:
                waits.append(result)
        if waits:
            done = asyncio.gather(*waits, return_exceptions=True)
            # Cancelled meanwhile (a second Ctrl-C, or run()'s task cancelled), the gather
            # ends with a CancelledError that wait_for never reads, and asyncio logs
            # "_GatheringFuture exception was never retrieved" when it is collected.
            done.add_done_callback(_read_outcome)
            try:
                results = await asyncio.wait_for(done, self.config.shutdown_grace)
            except TimeoutError:
                (self.logger or _LOG).warning(
                    "GAplic %r: shutdown callbacks still running after %.1f s; going on",
                    self.name,
                    self.config.shutdown_grace,
                )
            else:
                for result in results:
                    if isinstance(result, Exception):
                        self.handle_exception(result, "shutdown callback")

    def close(self) -> None:
        """Destroy every gobj of this GAplic and close the loop it made.  Idempotent."""
        if self._closed:
            return
        if self.is_running():
            raise RuntimeError(f"GAplic {self.name!r}: stop() it before close()")
        for gobj in list(self._roots):
            GObj.destroy_gobj(gobj)
        GObj.destroy_gobj(self)
        own = self._own_loop
        if own is not None and not own.is_closed():
            if self._aio_loop is None:
                self._bind(own)
            # Let transports closed by go_out() run their close callbacks.
            for _ in range(3):
                own.stop()
                own.run_forever()
        self._unbind()
        self._closed = True
        self._close_own_loop()
        registry.unregister_gaplic(self)

    def _close_own_loop(self) -> None:
        own = self._own_loop
        if own is None or own.is_closed():
            return
        if self._aio_loop is own:
            self._unbind()
        try:
            own.run_until_complete(own.shutdown_asyncgens())
        finally:
            own.close()

    def __del__(self, _warn: Callable[..., None] = warnings.warn) -> None:
        # Reliability catalogue J6: a GAplic collected while it still owns an open loop
        # (and whatever runs on it) was never closed: say so, as asyncio does for an
        # unclosed loop (uvloop does not), and close the loop if it is not running.
        own = getattr(self, "_own_loop", None)
        if own is None or own.is_closed() or getattr(self, "_closed", True):
            return
        _warn(f"unclosed GAplic {self.name!r}: call close()", ResourceWarning, source=self)
        if not own.is_running():
            own.close()

    def __enter__(self) -> GAplic:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Callback:
    """Run ``callback()`` every ``seconds`` on ``gaplic`` (tornado's PeriodicCallback).

    Deadlines follow the first one (no drift); ticks missed while the loop was busy are
    skipped, not run in a burst.
    """

    def __init__(self, callback: Callable[[], Any], seconds: float, gaplic: GAplic) -> None:
        seconds = float(finite_number(seconds))
        if seconds <= 0:
            raise GConfigValidateError(f"Callback: seconds must be > 0, not {seconds!r}")
        self.callback = callback
        self.seconds = seconds
        self.gaplic = gaplic
        self._handle: TimerHandle | None = None
        self._deadline = 0.0

    def start(self) -> None:
        """Start ticking (the first tick in ``seconds``)."""
        self.stop()
        self._deadline = self.gaplic.time() + self.seconds
        self._handle = self.gaplic.call_at(self._deadline, self._tick)

    def stop(self) -> None:
        """Stop ticking."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    cancel = stop

    def is_running(self) -> bool:
        return self._handle is not None

    def _tick(self) -> None:
        now = self.gaplic.time()
        self._deadline = next_periodic_deadline(self._deadline, self.seconds, now)
        self._handle = self.gaplic.call_at(self._deadline, self._tick)
        self.callback()


def next_periodic_deadline(previous: float, period: float, now: float) -> float:
    """The next deadline of a periodic timer: ``previous + period``, or, if the loop fell
    behind, the first multiple of ``period`` after ``now`` (missed ticks are skipped)."""
    following = previous + period
    if following > now or period <= 0:
        return following if period > 0 else now
    missed = math.floor((now - previous) / period)
    return previous + (missed + 1) * period


class GAplicThreadWorker(threading.Thread):
    """A thread running ``gaplic.start()``; ``join()`` waits 10 s by default."""

    def __init__(self, gaplic: GAplic) -> None:
        super().__init__(name=f"gaplic-{gaplic.name or id(gaplic)}", daemon=True)
        self.gaplic = gaplic

    def run(self) -> None:
        self.gaplic.start()

    def join(self, timeout: float | None = 10.0) -> None:
        super().join(timeout)

    def stop(self, timeout: float | None = 10.0) -> None:
        """Stop the GAplic and wait for the thread."""
        self.gaplic.stop()
        self.join(timeout)


def setup_gaplic_thread(gaplic: GAplic) -> GAplicThreadWorker:
    """A (not yet started) thread worker for ``gaplic``, registered for ``shutdown()``
    (``fsmio.aplic.workers``); call ``.start()`` on it."""
    from fsmio.aplic.workers import add_global_thread  # it imports this module

    worker = GAplicThreadWorker(gaplic)
    add_global_thread(worker)
    return worker


def get_gaplic_by_thread_ident(thread_ident: int | None = None) -> GAplic | None:
    """The GAplic running in the thread ``thread_ident`` (None: the calling thread), or
    None.  Only a GAplic with a name, running (or driven by ``_loop()``) is found.

    ginsfsm's read an attribute that did not exist (``thread_ident``) and raised when no
    main GAplic was set; this one works for any named GAplic.
    """
    if thread_ident is None:
        thread_ident = threading.get_ident()
    for gaplic in registry.live_gaplics():
        if gaplic._loop_thread == thread_ident:
            # the core's registry holds them untyped (core cannot import aplic)
            return cast(GAplic, gaplic)
    return None


async def _join_workers(workers: list[GAplicThreadWorker]) -> None:
    for _ in range(10_000_000):  # bounded by the GAplic's shutdown_grace anyway
        if not any(worker.is_alive() for worker in workers):
            return
        await asyncio.sleep(0.01)


def gaplic_factory(loader: Any, global_conf: dict[str, Any], **local_conf: Any) -> GAplic:
    """PasteDeploy composite factory (ginsfsm's): the GAplics and WSGI apps of an ini file.

    ``[composite:main]`` with ``use = call:fsmio:gaplic_factory`` (or the ginsfsm path
    ``call:fsmio.aplic.gaplic:gaplic_factory``) and these keys, each naming sections:

    * ``main`` — a section whose factory returns the main GAplic (returned; registered
      with ``set_global_main_gaplic``);
    * ``threads`` — sections returning GAplics run in threads (started now; stopped and
      joined within the main GAplic's ``shutdown_grace`` when it stops);
    * ``wsgi`` — sections returning WSGI applications, registered with
      ``set_global_app(section, app)`` so that a parameter ``'app:<section>'`` finds them;
    * ``subprocesses`` — an error: a GAplic that a section made here cannot move to
      another process (see ``fsmio.aplic.workers.setup_gaplic_process``, which takes a
      factory that makes the GAplic in the child).

    ``fsmio run app.ini`` loads such files.
    """
    main = str(local_conf.get("main") or "").strip()
    if not main:
        raise ValueError("gaplic_factory: the composite needs 'main = <section>'")
    wsgis = str(local_conf.get("wsgi", "")).split()
    threads = str(local_conf.get("threads", "")).split()
    subprocesses = str(local_conf.get("subprocesses", "")).split()
    if subprocesses:
        raise NotImplementedError(
            f"gaplic_factory: subprocesses = {' '.join(subprocesses)}: GAplics in "
            "subprocesses are not available from a composite (a GAplic made here cannot "
            "move to another process); use threads = ..., run each one with its own "
            "`fsmio run`, or setup_gaplic_process(factory) in code"
        )
    main_gaplic = loader.get_app(main, global_conf=global_conf)
    if not isinstance(main_gaplic, GAplic):
        raise TypeError(
            f"gaplic_factory: section {main!r} must return a GAplic, not {main_gaplic!r}"
        )
    registry.set_global_main_gaplic(main_gaplic)
    for name in wsgis:
        registry.set_global_app(name, loader.get_app(name, global_conf=global_conf))
    workers: list[GAplicThreadWorker] = []
    for name in threads:
        gaplic = loader.get_app(name, global_conf=global_conf)
        if not isinstance(gaplic, GAplic):
            raise TypeError(
                f"gaplic_factory: section {name!r} must return a GAplic, not {gaplic!r}"
            )
        workers.append(setup_gaplic_thread(gaplic))
    if workers:

        def stop_threads() -> Awaitable[None]:
            for worker in workers:
                worker.gaplic.stop()
            return _join_workers(workers)

        main_gaplic.add_shutdown_callback(stop_threads)
        for worker in workers:
            worker.start()
    return main_gaplic
