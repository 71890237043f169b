"""The live inspector: watch a running fsmio program in a browser.

A layer between ``remote`` and ``tools``: it imports ``core``, ``aplic``, ``gobjs`` and
``protocols``; ``tools`` (``fsmio run --inspect``, ``fsmio serve --inspect``, ``fsmio
inspect TRACE.jsonl``) imports it.  See ``docs/inspector.md``.

API
---
* ``GInspector`` — the gclass: ``gaplic.create_gobj("inspector", GInspector, gaplic,
  host="127.0.0.1", port=0)``; once listening it logs ``inspector listening on
  http://HOST:PORT/`` (logger ``fsmio.inspector``) and ``inspector.url`` holds that URL.
* ``add_inspector(gaplic, listen, token=None, **config)`` — the same from a
  ``"HOST:PORT"`` string (what ``--inspect`` takes); returns the GInspector.
* ``parse_listen("HOST:PORT")`` — ``(host, port)``; ``ValueError`` saying what is wrong.
* ``load_replay(path)`` — a trace file (``fsmio run --trace-file``) as a ``Replay``;
  ``GInspector(replay=...)`` serves it (mode ``replay``), as ``fsmio inspect`` does.
* ``start_inspected_echo(port=0)`` — for tests of the page: an echo server, a client
  sending a message every ``interval`` seconds and a GInspector, in a GAplic running in a
  thread; returns an ``InspectedEcho`` with ``url`` and ``stop()``.  From a shell the
  same is ``fsmio run examples/echo_inspect.toml --inspect 127.0.0.1:0``, which logs the
  line above.
"""

from __future__ import annotations

from .c_inspector import GInspector, is_loopback
from .demo import InspectedEcho, start_inspected_echo
from .replay import Replay, TraceError, load_replay

__all__ = [
    "GInspector",
    "InspectedEcho",
    "Replay",
    "TraceError",
    "add_inspector",
    "is_loopback",
    "load_replay",
    "parse_listen",
    "start_inspected_echo",
]


def parse_listen(text: str) -> tuple[str, int]:
    """``"HOST:PORT"`` (``"[::1]:PORT"`` for IPv6; ``":PORT"`` is 127.0.0.1) as
    ``(host, port)``; ``ValueError`` naming what is wrong."""
    if not isinstance(text, str) or ":" not in text:
        raise ValueError(f"expected HOST:PORT (for example 127.0.0.1:8765), not {text!r}")
    host, _, port_text = text.rpartition(":")
    host = host.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    host = host or "127.0.0.1"
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"{text!r}: the port {port_text!r} is not a number") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"{text!r}: the port must be 0 to 65535 (0: a free one)")
    return host, port


def add_inspector(
    gaplic: object, listen: str, token: str | None = None, **config: object
) -> GInspector:
    """Create a ``GInspector`` named ``inspector`` in ``gaplic``, listening on ``listen``
    (``"HOST:PORT"``); ``token`` unlocks control.  Raises ``ValueError`` for a bad address
    or a non-loopback one without a token, ``OSError`` when it cannot listen."""
    from fsmio.aplic.gaplic import GAplic

    if not isinstance(gaplic, GAplic):
        raise TypeError(f"add_inspector: expected a GAplic, not {type(gaplic).__name__}")
    host, port = parse_listen(listen)
    inspector: GInspector = gaplic.create_gobj(
        "inspector", GInspector, gaplic, host=host, port=port, token=token or None, **config
    )
    return inspector
