"""``fsmio serve module:app``: serve an ASGI or WSGI application, as uvicorn does.

::

    fsmio serve myproject.main:app --host 127.0.0.1 --port 8000
        [--interface auto|asgi|wsgi] [--ssl-certfile CERT --ssl-keyfile KEY]
        [--log-level info] [--root-path /api] [--lifespan auto|on|off] [--threads 8]
        [--workers N]

The application is imported from ``module:attr`` (the current directory is on
``sys.path``, as uvicorn's ``--app-dir .``), or is a name registered with
``set_global_app``.  ``--interface auto`` takes an ``async`` callable for ASGI 3 and
anything else for WSGI.  ASGI runs on ``GAsgiServer`` (one task per request on the
loop); WSGI on ``GWsgiServer`` (``--threads`` worker threads).

Once serving (for ASGI: after the lifespan start-up), one line goes to standard output:
``fsmio serve: serving module:app (ASGI) on http://HOST:PORT (press CTRL+C to quit)``;
``--port 0`` picks a free port and the line tells which.  SIGTERM or SIGINT stops it
gracefully (requests in flight get the GAplic's ``shutdown_grace``; a second SIGINT exits
at once).

``--workers N`` starts N worker processes, each a whole ``fsmio serve`` (its own loop,
its own ASGI lifespan), listening on the same port with ``SO_REUSEPORT``, supervised by
``fsmio.tools.supervisor.Supervisor`` exactly as ``fsmio run --workers``: restarted with
back-off when one dies, SIGTERM (or a first SIGINT) stops all gracefully, a second SIGINT
kills them (exit 130).  The supervisor binds the port first (``reserve_port``), so
``--port 0`` is one free port for every worker, and prints ``READY HOST PORT`` on standard
output once every worker serves.  A worker that fails to start (exit 1, 2 or 3) before
then stops the whole command with its exit code.

Exit codes: 0 after a graceful stop; 1 when it cannot start (port in use, bad TLS files);
2 bad input (the command line, an application that cannot be found); 3 the application's
lifespan start-up failed (uvicorn's code for it); 130 a second Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import os
import sys
from pathlib import Path
from typing import Any

from fsmio.aplic.gaplic import GAplic
from fsmio.core.errors import FsmioError

from . import EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_INTERRUPTED, ToolError
from .runner import (
    AppConfig,
    _log_level,
    _stop_on_signals,
    add_inspector_or_fail,
    check_inspect,
    logging_setup,
    run_to_end,
)

__all__ = ["INTERFACES", "serve", "serve_workers"]

_LOG = logging.getLogger("fsmio")

INTERFACES = ("auto", "asgi", "wsgi")


def _load(target: str) -> Any:
    from fsmio.protocols.apps import AppNotFound, load_application

    cwd = str(Path.cwd())
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        return load_application(target, what="fsmio serve")
    except AppNotFound as exc:
        raise ToolError(str(exc)) from None


def serve(
    target: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    interface: str = "auto",
    ssl_certfile: str | None = None,
    ssl_keyfile: str | None = None,
    log_level: str | None = "info",
    root_path: str = "",
    lifespan: str = "auto",
    threads: int = 8,
    out: Any = None,
    on_started: Any = None,
    worker_index: int | None = None,
    ready_fd: int | None = None,
    inspect: str | None = None,
    inspect_token: str | None = None,
    ws: str = "auto",
    ws_options: dict[str, Any] | None = None,
) -> int:
    """``fsmio serve``: run until stopped; return the exit code.

    ``ws`` (``--ws``): ``"auto"`` serves the ASGI ``websocket`` scope with GWebSocket
    parameters ``ws_options`` (the ``--ws-*`` options); ``"none"`` turns it off.

    ``inspect`` (``--inspect HOST:PORT``) adds a ``GInspector`` to the GAplic once the
    server is created (``inspect_token`` unlocks its control).

    ``on_started(gaplic, server)`` (for tests) is called once the server serves.
    ``worker_index`` (set by ``--workers``' supervisor): listen with ``SO_REUSEPORT`` and,
    once serving, write ``"<index>\\n"`` to ``ready_fd``.
    """
    if interface not in INTERFACES:
        raise ToolError(f"--interface: expected one of {', '.join(INTERFACES)}, not {interface!r}")
    if ssl_keyfile and not ssl_certfile:
        raise ToolError("--ssl-keyfile needs --ssl-certfile")
    if threads < 1:
        raise ToolError(f"--threads: expected a number >= 1, not {threads}")
    if not 0 <= port <= 65535:
        raise ToolError(f"--port: expected 0 to 65535, not {port}")
    level = _log_level(log_level or "INFO")
    if inspect is not None:
        check_inspect(inspect, inspect_token)
    app = _load(target)
    from fsmio.protocols.apps import is_asgi_app

    if interface == "auto":
        interface = "asgi" if is_asgi_app(app) else "wsgi"
    if ws not in ("auto", "none"):
        raise ToolError(f"--ws: expected auto or none, not {ws!r}")
    if interface == "wsgi" and ws_options:
        raise ToolError("the --ws-* options are for an ASGI application (WSGI has no WebSocket)")
    websocket = None if ws == "none" else dict(ws_options or {})
    ssl_options: dict[str, Any] = {}
    if ssl_certfile:
        ssl_options["certfile"] = ssl_certfile
        if ssl_keyfile:
            ssl_options["keyfile"] = ssl_keyfile
    scheme = "https" if ssl_options else "http"
    stream = out if out is not None else sys.stdout
    common: dict[str, Any] = {
        "host": host,
        "port": port,
        "ssl_options": ssl_options,
        "url_scheme": scheme,
    }
    name = "fsmio-serve"
    if worker_index is not None:
        name = f"fsmio-serve-w{worker_index}"
        common["sock_options"] = {"reuse_port": True}
        on_started = _report_ready(worker_index, ready_fd, on_started)

    cfg = AppConfig(path=Path(target), text="", name=name, log_level=level)
    with logging_setup(cfg, [], None):
        gaplic = GAplic(name)
        with _stop_on_signals(gaplic):
            return _run(
                gaplic,
                app,
                target,
                interface,
                common,
                root_path=root_path,
                lifespan=lifespan,
                threads=threads,
                stream=stream,
                on_started=on_started,
                inspect=inspect,
                inspect_token=inspect_token,
                websocket=websocket,
            )


def _report_ready(index: int, ready_fd: int | None, then: Any) -> Any:
    def on_started(gaplic: GAplic, server: Any) -> None:
        if ready_fd is not None:
            # A supervisor that is gone is not this worker's problem: it gets SIGTERM.
            with contextlib.suppress(OSError):
                os.write(ready_fd, f"{index}\n".encode())
                os.close(ready_fd)
        if then is not None:
            then(gaplic, server)

    return on_started


def serve_workers(args: argparse.Namespace) -> int:
    """``fsmio serve APP --workers N``: check once, hold the port, supervise N workers."""
    from .supervisor import Supervisor, reserve_port

    if args.workers < 1:
        raise ToolError(f"--workers must be 1 or more, not {args.workers}", EXIT_BAD_INPUT)
    if args.threads < 1:
        raise ToolError(f"--threads: expected a number >= 1, not {args.threads}")
    if not 0 <= args.port <= 65535:
        raise ToolError(f"--port: expected 0 to 65535, not {args.port}")
    if args.ssl_keyfile and not args.ssl_certfile:
        raise ToolError("--ssl-keyfile needs --ssl-certfile")
    # A missing application is bad input reported once, here, not by N workers.
    _load(args.app)
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=_log_level(args.log_level or "INFO"),
            format="%(asctime)s %(levelname)-7s %(message)s",
            datefmt="%Y-%m-%d %H:%M:%S",
        )
    holder = reserve_port(args.host, args.port)
    with holder:
        port = int(holder.getsockname()[1])
        command = [sys.executable, "-m", "fsmio", "serve", args.app]
        command += ["--host", args.host, "--port", str(port), "--interface", args.interface]
        command += ["--root-path", args.root_path, "--lifespan", args.lifespan]
        command += ["--threads", str(args.threads), "--ws", args.ws]
        for option, value in (
            ("--ws-max-size", args.ws_max_size),
            ("--ws-ping-interval", args.ws_ping_interval),
            ("--ws-ping-timeout", args.ws_ping_timeout),
            ("--ws-per-message-deflate", args.ws_per_message_deflate),
        ):
            if value is not None:
                command += [option, str(value)]
        if args.log_level:
            command += ["--log-level", args.log_level]
        if args.ssl_certfile:
            command += ["--ssl-certfile", args.ssl_certfile]
        if args.ssl_keyfile:
            command += ["--ssl-keyfile", args.ssl_keyfile]

        def ready() -> None:
            print(f"READY {args.host} {port}", flush=True)

        return Supervisor(command, args.workers, label="fsmio serve", on_ready=ready).run()


def _run(
    gaplic: GAplic,
    app: Any,
    target: str,
    interface: str,
    common: dict[str, Any],
    *,
    root_path: str,
    lifespan: str,
    threads: int,
    stream: Any,
    on_started: Any,
    inspect: str | None = None,
    inspect_token: str | None = None,
    websocket: dict[str, Any] | None = None,
) -> int:
    holder: list[Any] = []

    def ready() -> None:
        server = holder[0]
        host, port = server.config.host, server.config.port
        shown = f"[{host}]" if ":" in host else host or "0.0.0.0"
        print(
            f"fsmio serve: serving {target} ({interface.upper()}) on "
            f"{common['url_scheme']}://{shown}:{port} (press CTRL+C to quit)",
            file=stream,
            flush=True,
        )
        if on_started is not None:
            on_started(gaplic, server)

    def setup() -> None:
        try:
            if interface == "asgi":
                from fsmio.protocols.asgi.c_asgi_server import GAsgiServer

                server = gaplic.create_gobj(
                    "asgi-server",
                    GAsgiServer,
                    gaplic,
                    application=app,
                    root_path=root_path,
                    lifespan=lifespan,
                    websocket=websocket,
                    ready_callback=ready,
                    **common,
                )
            else:
                from fsmio.protocols.wsgi.c_wsgi_server import GWsgiServer

                server = gaplic.create_gobj(
                    "wsgi-server",
                    GWsgiServer,
                    gaplic,
                    application=app,
                    script_name=root_path,
                    threads=threads,
                    ready_callback=ready,
                    **common,
                )
        except OSError as exc:
            what = f"cannot listen on {common['host']}:{common['port']}"
            if exc.errno == errno.EADDRINUSE:
                raise ToolError(f"{what}: port in use", EXIT_FAILURE) from None
            raise ToolError(f"{what}: {exc.strerror or exc}", EXIT_FAILURE) from None
        except (FsmioError, ValueError) as exc:
            raise ToolError(str(exc)) from None
        holder.append(server)
        if inspect is not None:
            add_inspector_or_fail(gaplic, inspect, inspect_token)

    code = run_to_end(gaplic, "fsmio serve", setup)
    if code == EXIT_INTERRUPTED:
        return code
    _LOG.info("fsmio serve: stopped%s", f", exit code {code}" if code else "")
    return code
