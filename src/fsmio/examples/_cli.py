"""What the example servers share: their command line, their logging, and the second
Ctrl-C that ends them at once (exit 130, no traceback), as ``fsmio run`` does."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from typing import Any

from fsmio.aplic.gaplic import GAplic
from fsmio.core.errors import GConfigValidateError
from fsmio.tools import EXIT_INTERRUPTED

__all__ = ["interruptible", "run_server", "server_parser", "setup_logging"]

_LOG = logging.getLogger("fsmio")


def server_parser(doc: str | None, log_level: str = "INFO") -> argparse.ArgumentParser:
    """A parser with ``--host``, ``--port`` and ``--log-level``; the description is the
    first paragraph of ``doc``."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=0, help="port (0: a free one)")
    parser.add_argument("--log-level", default=log_level, help="logging level (stderr)")
    return parser


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def interruptible(name: str, main: Callable[[list[str] | None], int]) -> Callable[..., int]:
    """``main`` with the second Ctrl-C turned into exit 130 and one line on stderr."""

    def run(argv: list[str] | None = None) -> int:
        try:
            return main(argv)
        except KeyboardInterrupt:
            # Out at once, as `fsmio run` does (see tools/runner.py): the work it cut off
            # is not news, so asyncio is not let to report it on the way out.
            logging.getLogger("asyncio").disabled = True
            print(f"{name}: interrupted", file=sys.stderr, flush=True)
            return EXIT_INTERRUPTED

    return run


def run_server(
    program: str, gclass: type[Any], args: argparse.Namespace, banner: str, **kw: Any
) -> int:
    """Run a GAplic named ``program`` with one ``gclass`` gobj listening on ``args.host``
    and ``args.port`` (it has ``listening_on() -> (host, port)``): print
    ``READY <host> <port>`` from inside the running loop (the signal handlers are in place
    by then), log ``banner`` (formatted with ``host`` and ``port``), serve until stopped.
    1 if it cannot listen."""
    with GAplic(program) as gaplic:
        try:
            server = gaplic.create_gobj(
                program, gclass, gaplic, host=args.host, port=args.port, **kw
            )
        except (OSError, GConfigValidateError) as exc:
            print(f"{program}: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
            return 1
        host, port = server.listening_on()

        def announce() -> None:
            print(f"READY {host} {port}", flush=True)
            _LOG.info(banner.format(host=host, port=port))

        gaplic.add_callback(announce)
        gaplic.start()
    return 0
