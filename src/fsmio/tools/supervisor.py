"""``fsmio run APP.toml --workers N`` and ``fsmio serve APP --workers N``: N worker
processes sharing the listening ports, supervised.

``Supervisor`` is the part both commands share: it starts ``COMMAND --worker-index I``
for I in 0..N-1, restarts, stops and reports them.  ``fsmio serve`` adds a readiness pipe
(``on_ready``: each worker writes its index to ``--ready-fd FD`` once it serves) and
``reserve_port``, which binds the port once in the supervisor (see ``fsmio.tools.serve``).

For ``fsmio run``, each worker is ``fsmio run APP.toml --worker-index I``: the same GAplic, named
``<name>-w<I>`` with the extra role ``<name>`` (so that, over NATS, an event to the role
reaches exactly one worker), and ``GServerSock.reuse_port = true``, so the kernel spreads
the connections of one port over the workers (``SO_REUSEPORT``).  The listening ports
must be fixed (port 0 would give each worker a port of its own).

The supervisor (this process) restarts a worker that dies, after a back-off (0.5 s,
doubling up to 30 s; back to 0.5 s once a worker has run for 30 s), and logs it.  The
first SIGTERM or SIGINT stops every worker gracefully (SIGTERM to each, then SIGKILL
after ``grace`` seconds); a second SIGINT kills them at once (exit 130).  With ``on_ready``,
a worker that exits with an error before every worker has been ready once stops them all
and the supervisor exits with that code: a start that failed (a port in use, a bad
application, a lifespan start-up that failed) would fail again, restarted for ever.  On Linux a
worker also gets SIGTERM when the supervisor dies, even by SIGKILL (``PR_SET_PDEATHSIG``).

Linux: ``SO_REUSEPORT`` balances connections by a hash of their addresses, so a busy or
stuck worker still gets its share (its clients wait).  A worker's queued connections are
reset when it dies.  macOS and the BSDs accept ``SO_REUSEPORT`` but give every connection
to one socket, the last bound: there it gives a warm standby, not balance.  Windows has
no ``SO_REUSEPORT``.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import io
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType

from . import EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_INTERRUPTED, ToolError

__all__ = ["Supervisor", "reserve_port", "run_workers", "worker_command"]

_LOG = logging.getLogger("fsmio")

_MIN_BACKOFF = 0.5
_MAX_BACKOFF = 30.0
_HEALTHY_AFTER = 30.0


@dataclass
class _Worker:
    index: int
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    backoff: float = _MIN_BACKOFF
    restart_at: float = 0.0
    restarts: int = 0


@dataclass
class Supervisor:
    """Runs ``command + ['--worker-index', I]`` for I in 0..N-1 and keeps them running.

    ``on_ready`` (optional) is called once, when every worker has reported that it serves:
    the workers then also get ``--ready-fd FD`` and write ``I\\n`` to it once serving.
    ``label`` starts every log line (the command's name).
    """

    command: list[str]
    workers: int
    grace: float = 10.0
    poll: float = 0.1
    label: str = "fsmio run"
    on_ready: Callable[[], None] | None = None
    _slots: list[_Worker] = field(default_factory=list)
    _stopping: int = 0
    _ready_pipe: tuple[int, int] | None = None
    _ready: set[int] = field(default_factory=set)
    _announced: bool = False
    _failed: int | None = None

    def _spawn(self, slot: _Worker) -> None:
        args = [*self.command, "--worker-index", str(slot.index)]
        pass_fds: tuple[int, ...] = ()
        if self._ready_pipe is not None:
            args += ["--ready-fd", str(self._ready_pipe[1])]
            pass_fds = (self._ready_pipe[1],)
        slot.proc = subprocess.Popen(args, pass_fds=pass_fds, preexec_fn=_die_with_parent)
        slot.started = time.monotonic()
        _LOG.info("%s: worker %d started, pid %d", self.label, slot.index, slot.proc.pid)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stopping += 1
        name = signal.Signals(signum).name
        if self._stopping == 1:
            _LOG.info("%s: %s: stopping %d workers", self.label, name, self.workers)
        elif signum == signal.SIGINT:
            _LOG.warning("%s: second SIGINT: killing the workers", self.label)

    def pids(self) -> list[int]:
        return [slot.proc.pid for slot in self._slots if slot.proc is not None]

    def run(self) -> int:
        """Start the workers and supervise them until a signal; return the exit code."""
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        if self.on_ready is not None:
            self._ready_pipe = os.pipe()
            os.set_blocking(self._ready_pipe[0], False)
        try:
            self._slots = [_Worker(index) for index in range(self.workers)]
            for slot in self._slots:
                self._spawn(slot)
            while not self._stopping and self._failed is None:
                self._check()
                time.sleep(self.poll)
            code = self._stop_all()
            return self._failed if self._failed is not None else code
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if self._ready_pipe is not None:
                for fd in self._ready_pipe:
                    os.close(fd)
                self._ready_pipe = None

    def _read_ready(self) -> None:
        if self._ready_pipe is None:
            return
        try:
            data = os.read(self._ready_pipe[0], 4096)
        except BlockingIOError:
            return
        # Each write is a few bytes, below PIPE_BUF: atomic, never split between reads.
        self._ready.update(int(token) for token in data.split() if token.isdigit())
        if not self._announced and len(self._ready) >= self.workers:
            self._announced = True
            _LOG.info("%s: %d workers serving", self.label, self.workers)
            assert self.on_ready is not None
            self.on_ready()

    def _check(self) -> None:
        self._read_ready()
        now = time.monotonic()
        for slot in self._slots:
            proc = slot.proc
            if proc is not None and proc.poll() is not None:
                ran = now - slot.started
                if self.on_ready is not None and not self._announced and proc.returncode > 0:
                    _LOG.error(
                        "%s: worker %d (pid %d) could not start (exit code %d): "
                        "stopping the others",
                        self.label,
                        slot.index,
                        proc.pid,
                        proc.returncode,
                    )
                    slot.proc = None
                    self._failed = proc.returncode
                    return
                if ran >= _HEALTHY_AFTER:
                    slot.backoff = _MIN_BACKOFF
                _LOG.warning(
                    "%s: worker %d (pid %d) exited with %s after %.1f s; restarting in %.1f s",
                    self.label,
                    slot.index,
                    proc.pid,
                    proc.returncode,
                    ran,
                    slot.backoff,
                )
                slot.proc = None
                slot.restart_at = now + slot.backoff
                slot.backoff = min(_MAX_BACKOFF, slot.backoff * 2)
            elif proc is None and now >= slot.restart_at:
                slot.restarts += 1
                self._spawn(slot)

    def _stop_all(self) -> int:
        running = [slot.proc for slot in self._slots if slot.proc is not None]
        for proc in running:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        resend = time.monotonic() + 0.5
        while any(proc.poll() is None for proc in running):
            if time.monotonic() >= resend:
                # Again: a SIGTERM that lands while a worker installs its handlers can be
                # lost; a second one is harmless.
                resend = time.monotonic() + 0.5
                for proc in running:
                    if proc.poll() is None:
                        proc.send_signal(signal.SIGTERM)
            if self._stopping > 1 or time.monotonic() > deadline:
                for proc in running:
                    if proc.poll() is None:
                        proc.kill()
                for proc in running:
                    proc.wait()
                return EXIT_INTERRUPTED if self._stopping > 1 else 1
            time.sleep(self.poll)
        codes = [proc.returncode for proc in running]
        _LOG.info("%s: workers stopped, exit codes %s", self.label, codes)
        # -SIGTERM: a worker still starting (its handlers not yet in place) had nothing
        # to finish; that is a graceful stop too.
        return 0 if all(code in (0, -signal.SIGTERM) for code in codes) else 1


def _die_with_parent() -> None:
    """In the worker, before exec (Linux): SIGTERM when the supervisor dies, even killed,
    so that no worker is left holding the port."""
    if sys.platform == "linux":
        import ctypes

        pr_set_pdeathsig = 1
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def reserve_port(host: str, port: int) -> socket.socket:
    """A socket bound (not listening) to ``host:port`` with ``SO_REUSEPORT``: the
    supervisor holds it while the workers run, so that port 0 becomes one port for all of
    them, that no other program takes the port while every worker is being restarted, and
    that a port in use is reported once, before any worker starts.  A bound socket that
    does not listen gets no connections."""
    reuse_port = getattr(socket, "SO_REUSEPORT", None)
    if reuse_port is None:
        raise ToolError("--workers needs SO_REUSEPORT, which this platform does not have")
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, reuse_port, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        reason = "port in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
        raise ToolError(f"cannot listen on {host}:{port}: {reason}", EXIT_FAILURE) from None
    return sock


def worker_command(config: str, passthrough: list[str]) -> list[str]:
    """The command of one worker (without its index)."""
    return [sys.executable, "-m", "fsmio", "run", config, *passthrough]


def run_workers(args: argparse.Namespace) -> int:
    """``fsmio run CONFIG --workers N``: check the file once, then supervise N workers."""
    from .runner import run_app

    if args.workers < 1:
        raise ToolError(f"--workers must be 1 or more, not {args.workers}", EXIT_BAD_INPUT)
    if args.check or args.trace_file:
        raise ToolError("--workers does not go with --check or --trace-file", EXIT_BAD_INPUT)
    # Bad input is reported once, here, not by N workers restarted for ever.
    with contextlib.redirect_stdout(io.StringIO()):  # its "ok" line is not news here
        code = run_app(args.config, sets=args.sets, traces=args.trace, check_only=True)
    if code:
        return code
    passthrough: list[str] = []
    for item in args.sets:
        passthrough += ["--set", item]
    for option, value in (
        ("--trace", args.trace),
        ("--log-level", args.log_level),
        ("--log-format", args.log_format),
    ):
        if value:
            passthrough += [option, value]
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    return Supervisor(worker_command(args.config, passthrough), args.workers).run()
