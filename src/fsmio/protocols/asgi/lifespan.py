"""The ASGI ``lifespan`` protocol: start-up and shut-down of an application.

``Lifespan(app, mode, logger)``: ``await startup()`` runs the application's lifespan
scope until it answers ``lifespan.startup.complete`` (True) or ``lifespan.startup.failed``
(False, ``error`` says why); ``await shutdown()`` asks it to stop.  ``mode``:

* ``"auto"`` — an application that raises before it answers the start-up (one that does
  not speak ``lifespan``: most WSGI-style or minimal apps) is logged at INFO, and the
  server goes on without it (uvicorn's behaviour);
* ``"on"`` — the same is a start-up failure;
* ``"off"`` — the lifespan scope is never sent.

``state`` is the scope's ``state`` dict: what the application puts there during start-up
is copied into every request's scope.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Final

from .messages import ASGI_VERSION

__all__ = ["LIFESPAN_MODES", "Lifespan"]

LIFESPAN_MODES: Final = ("auto", "on", "off")


class Lifespan:
    """Runs one application's lifespan scope (see the module documentation)."""

    def __init__(self, app: Any, mode: str, logger: logging.Logger) -> None:
        if mode not in LIFESPAN_MODES:
            raise ValueError(f"lifespan: expected one of {', '.join(LIFESPAN_MODES)}, not {mode!r}")
        self.app = app
        self.mode = mode
        self.logger = logger
        self.state: dict[str, Any] = {}
        self.error: str | None = None
        #: The application takes part (it answered the start-up).
        self.supported = False
        self._receive_queue: asyncio.Queue[dict[str, Any]] | None = None
        self._startup_done: asyncio.Event | None = None
        self._shutdown_done: asyncio.Event | None = None
        self._startup_failed = False
        self._shutdown_failed = False
        self._task: asyncio.Task[None] | None = None
        self._app_error: BaseException | None = None

    async def startup(self) -> bool:
        """Start the application; False when its start-up failed (see ``error``)."""
        if self.mode == "off":
            return True
        self._receive_queue = asyncio.Queue()
        self._startup_done = asyncio.Event()
        self._shutdown_done = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._main())
        await self._receive_queue.put({"type": "lifespan.startup"})
        startup_waiter = asyncio.ensure_future(self._startup_done.wait())
        done, _ = await asyncio.wait({startup_waiter, self._task}, return_when="FIRST_COMPLETED")
        if startup_waiter not in done:
            startup_waiter.cancel()
        if self._startup_failed:
            return False
        if not self._startup_done.is_set():
            # The application returned or raised without answering.
            exc = self._app_error
            if self.mode == "on" or (exc is None and self.supported):
                self.error = self.error or (
                    f"the application's lifespan raised {exc!r}"
                    if exc is not None
                    else "the application's lifespan returned before startup completed"
                )
                return False
            self.logger.info("ASGI 'lifespan' protocol appears unsupported (%r).", exc)
            return True
        return True

    async def shutdown(self) -> None:
        """Ask the application to shut down and wait for its answer."""
        task = self._task
        if self.mode == "off" or not self.supported or task is None or task.done():
            return
        assert self._receive_queue is not None and self._shutdown_done is not None
        await self._receive_queue.put({"type": "lifespan.shutdown"})
        waiter = asyncio.ensure_future(self._shutdown_done.wait())
        await asyncio.wait({waiter, task}, return_when="FIRST_COMPLETED")
        if not waiter.done():
            waiter.cancel()
        if self._shutdown_failed:
            self.logger.error("ASGI lifespan shutdown failed: %s", self.error)

    async def _main(self) -> None:
        scope = {"type": "lifespan", "asgi": ASGI_VERSION, "state": self.state}
        try:
            await self.app(scope, self._receive, self._send)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self._app_error = exc
            if self._startup_failed or self._shutdown_failed:
                return  # reported with the failed message already
            if self.supported or self.mode == "on":
                self.logger.error("ASGI lifespan: the application raised %r", exc, exc_info=exc)

    async def _receive(self) -> dict[str, Any]:
        assert self._receive_queue is not None
        self.supported = True
        return await self._receive_queue.get()

    async def _send(self, message: dict[str, Any]) -> None:
        assert self._startup_done is not None and self._shutdown_done is not None
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "lifespan.startup.complete":
            self._startup_done.set()
        elif kind == "lifespan.startup.failed":
            self._startup_failed = True
            self.error = str(message.get("message") or "lifespan.startup.failed")
            self._startup_done.set()
        elif kind == "lifespan.shutdown.complete":
            self._shutdown_done.set()
        elif kind == "lifespan.shutdown.failed":
            self._shutdown_failed = True
            self.error = str(message.get("message") or "lifespan.shutdown.failed")
            self._shutdown_done.set()
        else:
            raise RuntimeError(f"lifespan: unexpected ASGI message {kind!r}")

    def cancel(self) -> None:
        """Stop the lifespan task if it still runs (after shutdown, or a failed start)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
