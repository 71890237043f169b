"""The ``fsmio`` command (also ``python -m fsmio``): ``run``, ``draw``, ``check``, ``trace``,
``serve``, ``inspect``.

Every command reports bad input as one clear ``fsmio <command>: error: ...`` message on
standard error and a non-zero exit code, never a traceback (``--traceback`` shows it, for
debugging fsmio itself).  Exit codes: 0 success; 1 a failure while running, or problems
found by ``check``; 2 bad input (command line, file, config); 130 a second Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fsmio._compiled import build_info
from fsmio._version import __version__

from . import EXIT_FAILURE, EXIT_INTERRUPTED, ToolError, gclasses_in, import_module, load_gclass

__all__ = ["build_parser", "main"]


def _add_inspect_args(command: argparse.ArgumentParser, workers_note: str) -> None:
    command.add_argument(
        "--inspect",
        metavar="HOST:PORT",
        help="add the live inspector (a page and a WebSocket feed, see docs/inspector.md) "
        "on HOST:PORT, e.g. 127.0.0.1:8765 (port 0: a free one; the log says "
        "'inspector listening on http://HOST:PORT/'). A non-loopback HOST needs a token. "
        + workers_note,
    )
    command.add_argument(
        "--inspect-token",
        metavar="TOKEN",
        help="unlock the inspector's control (send an input event, toggle trace_mach) for a "
        "page opened as http://HOST:PORT/#token=TOKEN; default: the FSMIO_INSPECT_TOKEN "
        "environment variable (so the token need not be on a command line); none: read-only",
    )


def _inspect_token(args: argparse.Namespace) -> str | None:
    token = getattr(args, "inspect_token", None) or os.environ.get("FSMIO_INSPECT_TOKEN")
    return token or None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fsmio",
        description="Run, draw, check and trace fsmio applications and gclasses.",
    )
    parser.add_argument(
        "--version", action="version", version=f"fsmio {__version__} ({build_info()})"
    )
    parser.add_argument(
        "--traceback", action="store_true", help="show the traceback of an error (debugging)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    run = sub.add_parser(
        "run",
        help="run a GAplic described by a TOML file",
        description="Create the GAplic and the gobjs a TOML file describes, and run them "
        "until SIGTERM or SIGINT (a second SIGINT exits at once). See docs/tools.md.",
    )
    run.add_argument("config", help="the TOML file")
    run.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="add or override a [settings] entry, e.g. echo.port=7000 (converted and "
        "checked by the parameter's type); repeatable",
    )
    run.add_argument(
        "--check",
        action="store_true",
        help="load and validate everything, create nothing; exit 0 or list every problem",
    )
    run.add_argument(
        "--trace",
        metavar="KINDS",
        help="comma-separated traces: mach, creation, subscription, dump",
    )
    run.add_argument(
        "--trace-file",
        metavar="FILE",
        help="write every machine transition as JSON lines (read it with `fsmio trace`)",
    )
    run.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="run N worker processes sharing the listening ports (SO_REUSEPORT), "
        "supervised: restarted when they die (see docs/remote.md)",
    )
    run.add_argument("--worker-index", type=int, help=argparse.SUPPRESS)
    _add_inspect_args(run, "Not with --workers (one process only).")
    run.add_argument("--log-level", metavar="LEVEL", help="override [logging] level")
    run.add_argument("--log-format", choices=("plain", "json"), help="override [logging] format")

    nats_config = sub.add_parser(
        "nats-config",
        help="print the NATS server authorization block for fsmio run files",
        description="One NATS user per GAplic, allowed to publish only as itself. "
        "See docs/remote.md.",
    )
    nats_config.add_argument("configs", nargs="+", metavar="APP.toml", help="fsmio run files")

    draw = sub.add_parser(
        "draw",
        help="draw the FSM of gclasses",
        description="Draw gclass FSMs from the compiled FSM. TARGET is package.module:GClass, "
        "or package.module for every gclass defined in it. Styles: graph (states and "
        "EV_X / ac_y transitions; .mmd and .dot text, .svg and .png through Graphviz) and "
        "card (the ginsfsm card, SVG drawn by fsmio, nothing to install).",
    )
    draw.add_argument("targets", nargs="+", metavar="TARGET")
    draw.add_argument(
        "-o",
        "--output",
        metavar="PATH",
        help="output file (format from its suffix), or a directory (ending in / or "
        "existing) to write <GClass>.<style>.<format> files; default: standard output",
    )
    draw.add_argument(
        "--format",
        dest="formats",
        action="append",
        choices=("mmd", "dot", "svg", "png", "all"),
        help="output format (repeatable with a directory output; default: the suffix, or svg)",
    )
    draw.add_argument(
        "--style",
        dest="styles",
        action="append",
        choices=("graph", "card", "all"),
        help="diagram style: graph (default) or card; repeatable with a directory output",
    )

    check = sub.add_parser(
        "check",
        help="validate the gclasses of modules",
        description="Import each module (package.module, or a .py file), find every gclass "
        "defined in it, and report every problem of its FSM and config template with file "
        "and line. Exit 1 if any problem was found.",
    )
    check.add_argument("modules", nargs="+", metavar="MODULE")
    check.add_argument(
        "--ignore",
        metavar="KINDS",
        default="",
        help="comma-separated problem kinds not to report (e.g. no-description)",
    )
    check.add_argument(
        "--all-gclasses",
        action="store_true",
        help="also check gclasses the module imports from elsewhere",
    )

    trace = sub.add_parser(
        "trace",
        help="print a trace file as the indented -> mach: / <- mach: view",
        description="Print a JSON-lines trace file written by `fsmio run --trace-file` as "
        "the indented machine trace, optionally filtered.",
    )
    trace.add_argument("file")
    trace.add_argument(
        "--gobj",
        action="append",
        default=[],
        metavar="NAME",
        help="only this gobj (its name, dotted path, or a glob such as 'echo.*'); repeatable",
    )
    trace.add_argument(
        "--event", action="append", default=[], metavar="EV", help="only this event; repeatable"
    )
    trace.add_argument(
        "--state", action="append", default=[], metavar="ST", help="only in this state; repeatable"
    )
    trace.add_argument("--no-time", action="store_true", help="leave the timestamps out")

    inspect = sub.add_parser(
        "inspect",
        help="replay a trace file in the inspector page",
        description="Serve the inspector page on a JSON-lines trace file written by "
        "`fsmio run --trace-file`: the gobjs it saw and all its events, to scrub through "
        "(read-only). Runs until SIGTERM or SIGINT. See docs/inspector.md.",
    )
    inspect.add_argument("file", metavar="TRACE.jsonl")
    inspect.add_argument(
        "--listen",
        default="127.0.0.1:8765",
        metavar="HOST:PORT",
        help="address of the page (default 127.0.0.1:8765; port 0: a free one; a "
        "non-loopback HOST needs --inspect-token)",
    )
    inspect.add_argument(
        "--module",
        dest="modules",
        action="append",
        default=[],
        metavar="MODULE",
        help="import this module (package.module) first, so that the diagrams of its "
        "gclasses can be shown; repeatable (fsmio's own gclasses are always known)",
    )
    inspect.add_argument("--inspect-token", metavar="TOKEN", help=argparse.SUPPRESS)
    inspect.add_argument("--log-level", metavar="LEVEL", default="INFO", help="log level")
    _add_serve_parser(sub)
    return parser


def _add_serve_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = sub.add_parser(
        "serve",
        help="serve an ASGI or WSGI application (module:app), as uvicorn does",
        description="Serve the ASGI 3 or WSGI application APP ('package.module:attr') over "
        "HTTP/1.1 until SIGTERM or SIGINT. Prints one line with the address once serving. "
        "See docs/wsgi_asgi.md.",
    )
    serve.add_argument("app", metavar="APP", help="the application: package.module:attr")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: a free one)")
    serve.add_argument(
        "--interface",
        choices=("auto", "asgi", "wsgi"),
        default="auto",
        help="application interface (default auto: an async callable is ASGI)",
    )
    serve.add_argument("--ssl-certfile", metavar="FILE", help="PEM certificate chain (TLS)")
    serve.add_argument("--ssl-keyfile", metavar="FILE", help="PEM private key")
    serve.add_argument(
        "--log-level",
        default="info",
        type=str.upper,
        choices=("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"),
        metavar="LEVEL",
        help="critical, error, warning, info (default) or debug",
    )
    serve.add_argument("--root-path", default="", help="ASGI root_path / WSGI SCRIPT_NAME")
    serve.add_argument(
        "--lifespan", choices=("auto", "on", "off"), default="auto", help="ASGI lifespan"
    )
    serve.add_argument("--threads", type=int, default=8, help="WSGI worker threads (default 8)")
    serve.add_argument(
        "--ws",
        choices=("auto", "none"),
        default="auto",
        help="ASGI websocket scope: auto (served by GWebSocket) or none (an upgrade request "
        "is a plain http request)",
    )
    serve.add_argument(
        "--ws-max-size",
        type=int,
        metavar="BYTES",
        help="largest WebSocket message accepted (default 1 MiB; larger: close 1009)",
    )
    serve.add_argument(
        "--ws-ping-interval",
        type=float,
        metavar="SECONDS",
        help="WebSocket keepalive ping period (default 20; 0: no pings)",
    )
    serve.add_argument(
        "--ws-ping-timeout",
        type=float,
        metavar="SECONDS",
        help="seconds to wait for a pong, then close 1011 (default 20; 0: never)",
    )
    serve.add_argument(
        "--ws-per-message-deflate",
        type=_on_off,
        metavar="BOOL",
        help="offer permessage-deflate compression (default false: it costs memory per connection)",
    )
    serve.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="run N worker processes sharing the port (SO_REUSEPORT), supervised: "
        "restarted when they die; prints READY HOST PORT once all serve",
    )
    serve.add_argument("--worker-index", type=int, help=argparse.SUPPRESS)
    serve.add_argument("--ready-fd", type=int, help=argparse.SUPPRESS)
    _add_inspect_args(serve, "Not with --workers (one process only).")


def cmd_draw(args: argparse.Namespace) -> int:
    from .draw import FORMATS, STYLES, draw_all, format_of, model_of, render

    gclasses = []
    for target in args.targets:
        if ":" in target:
            gclasses.append(load_gclass(target))
        else:
            found = gclasses_in(import_module(target))
            if not found:
                raise ToolError(f"module {target!r} defines no gclass")
            gclasses.extend(found)
    styles = list(STYLES) if "all" in (args.styles or []) else (args.styles or ["graph"])
    formats = list(FORMATS) if "all" in (args.formats or []) else (args.formats or [])
    out = Path(args.output) if args.output else None
    to_dir = out is not None and (
        args.output.endswith(("/", "\\"))
        or out.is_dir()
        or len(gclasses) > 1
        or len(styles) > 1
        or len(formats) > 1
    )
    if to_dir:
        assert out is not None
        written = draw_all(gclasses, out, styles, formats or ["svg"])
        for path in written:
            print(path)
        return 0
    if len(gclasses) > 1 or len(styles) > 1 or len(formats) > 1:
        raise ToolError("several gclasses, styles or formats need -o DIRECTORY/")
    fmt = format_of(out, formats[0] if formats else None)
    data = render(model_of(gclasses[0]), styles[0], fmt)
    if out is None:
        if fmt == "png" and sys.stdout.isatty():
            raise ToolError("not writing PNG to a terminal: use -o FILE.png")
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        try:
            out.write_bytes(data)
        except OSError as exc:
            raise ToolError(f"cannot write {str(out)!r}: {exc.strerror}", EXIT_FAILURE) from None
        print(out)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from .runner import run_app

    if args.workers is not None:
        if args.inspect is not None:
            raise ToolError(
                "--inspect watches one process: not with --workers (run one worker with "
                "--inspect to look at it)"
            )
        from .supervisor import run_workers

        return run_workers(args)
    return run_app(
        args.config,
        sets=args.sets,
        traces=args.trace,
        trace_file=args.trace_file,
        check_only=args.check,
        log_level=args.log_level,
        log_format=args.log_format,
        worker_index=args.worker_index,
        inspect=args.inspect,
        inspect_token=_inspect_token(args),
    )


def cmd_check(args: argparse.Namespace) -> int:
    from .check import run_check

    ignore = [word.strip() for word in args.ignore.split(",") if word.strip()]
    return run_check(args.modules, ignore=ignore, all_gclasses=args.all_gclasses)


def cmd_trace(args: argparse.Namespace) -> int:
    from .trace import print_trace

    return print_trace(
        args.file,
        gobjs=args.gobj,
        events=args.event,
        states=args.state,
        show_time=not args.no_time,
    )


def _on_off(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, not {text!r}")


def _ws_options(args: argparse.Namespace) -> dict[str, Any]:
    """The GWebSocket parameters the --ws-* options set (only those given)."""
    given = {
        "max_message_size": args.ws_max_size,
        "ping_interval": args.ws_ping_interval,
        "ping_timeout": args.ws_ping_timeout,
        "compression": args.ws_per_message_deflate,
    }
    return {name: value for name, value in given.items() if value is not None}


def cmd_serve(args: argparse.Namespace) -> int:
    from .serve import serve, serve_workers

    if args.workers is not None:
        if args.inspect is not None:
            raise ToolError(
                "--inspect watches one process: not with --workers (run one worker with "
                "--inspect to look at it)"
            )
        return serve_workers(args)
    return serve(
        args.app,
        host=args.host,
        port=args.port,
        interface=args.interface,
        ssl_certfile=args.ssl_certfile,
        ssl_keyfile=args.ssl_keyfile,
        log_level=args.log_level,
        root_path=args.root_path,
        lifespan=args.lifespan,
        threads=args.threads,
        worker_index=args.worker_index,
        ready_fd=args.ready_fd,
        inspect=args.inspect,
        inspect_token=_inspect_token(args),
        ws=args.ws,
        ws_options=_ws_options(args),
    )


def cmd_inspect(args: argparse.Namespace) -> int:
    from fsmio.aplic.gaplic import GAplic
    from fsmio.inspector import TraceError, load_replay

    from .runner import (
        AppConfig,
        _log_level,
        add_inspector_or_fail,
        check_inspect,
        logging_setup,
        run_to_end,
    )

    token = _inspect_token(args)
    check_inspect(args.listen, token)
    import fsmio  # noqa: F401  (its gclasses: their diagrams can be shown)

    for module in args.modules:
        import_module(module)
    try:
        replay = load_replay(args.file)
    except TraceError as exc:
        raise ToolError(str(exc)) from None
    for error in replay.errors[:20]:
        print(f"fsmio inspect: warning: {error}", file=sys.stderr)
    if len(replay.errors) > 20:
        print(f"fsmio inspect: warning: {len(replay.errors) - 20} more bad lines", file=sys.stderr)
    if not replay.events:
        raise ToolError(f"{args.file}: no machine-trace record to replay")
    cfg = AppConfig(path=Path(args.file), text="", name="fsmio-inspect")
    cfg.log_level = _log_level(args.log_level)
    with logging_setup(cfg, [], None):
        gaplic = GAplic("fsmio-inspect")
        return run_to_end(
            gaplic,
            "fsmio inspect",
            lambda: add_inspector_or_fail(gaplic, args.listen, token, replay=replay),
        )


def cmd_nats_config(args: argparse.Namespace) -> int:
    from .natsconfig import print_nats_config

    return print_nats_config(args.configs)


COMMANDS = {
    "run": cmd_run,
    "draw": cmd_draw,
    "check": cmd_check,
    "trace": cmd_trace,
    "serve": cmd_serve,
    "inspect": cmd_inspect,
    "nats-config": cmd_nats_config,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``fsmio`` with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except ToolError as exc:
        if args.traceback:
            traceback.print_exc()
        for line in exc.message.splitlines():
            print(f"fsmio {args.command}: error: {line}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print(f"fsmio {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        if args.traceback:
            raise
        print(
            f"fsmio {args.command}: error: {type(exc).__name__}: {exc} "
            "(run with --traceback for details)",
            file=sys.stderr,
        )
        return EXIT_FAILURE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
