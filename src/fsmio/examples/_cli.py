"""What the example servers share: their command line, their logging, and the second
Ctrl-C that ends them at once (exit 130, no traceback), as ``fsmio run`` does."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

from fsmio.tools import EXIT_INTERRUPTED

__all__ = ["interruptible", "server_parser", "setup_logging"]


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
