"""Small helpers ginsfsm programs import: text/bytes conversion, random keys, URLs.

ginsfsm kept them in ``ginsfsm.compat`` (``bytes_``, ``text_``) and ``ginsfsm.utils``
(``random_key``, ``get_path_from_url``, ``get_host_port_from_urls``); the meanings are
the same.  ``hexdump`` lives with GSock (``fsmio.gobjs.c_sock``).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlparse

__all__ = [
    "bytes_",
    "get_host_port_from_urls",
    "get_path_from_url",
    "random_key",
    "text_",
]

_LOG = logging.getLogger("fsmio")

#: Default ports of the URL schemes ginsfsm knew (any other scheme: 80, as there).
_DEFAULT_PORTS = {"https": 443, "wss": 443, "http": 80, "ws": 80}


def bytes_(s: Any, encoding: str = "latin-1", errors: str = "strict") -> Any:
    """``s.encode(encoding, errors)`` if ``s`` is a str, else ``s`` as it is."""
    if isinstance(s, str):
        return s.encode(encoding, errors)
    return s


def text_(s: Any, encoding: str = "latin-1", errors: str = "strict") -> Any:
    """``s.decode(encoding, errors)`` if ``s`` is bytes, else ``s`` as it is."""
    if isinstance(s, bytes):
        return s.decode(encoding, errors)
    return s


def random_key() -> str:
    """A random session key: 32 hexadecimal characters.

    ginsfsm hashed ``random()`` and the time with md5; this takes 128 bits from the
    operating system's secure source (the same length and alphabet).
    """
    return secrets.token_hex(16)


def get_path_from_url(url: str) -> str:
    """The path of ``url`` (``'ws://h:8/a/b?x'`` -> ``'/a/b'``)."""
    return urlparse(url).path


def get_host_port_from_urls(urls: Iterable[str]) -> list[tuple[str, int]]:
    """``(host, port)`` of each URL; the port defaults to 443 for https/wss, else 80.

    A URL without a scheme or a host is skipped, with a warning (ginsfsm printed it).
    """
    routes: list[tuple[str, int]] = []
    for url in urls:
        parsed = urlparse(url)
        try:
            port = parsed.port
        except ValueError:
            _LOG.warning("get_host_port_from_urls(): bad port in URL %r; skipped", url)
            continue
        if not parsed.hostname or not parsed.scheme:
            _LOG.warning("get_host_port_from_urls(): no host in URL %r; skipped", url)
            continue
        routes.append((parsed.hostname, port or _DEFAULT_PORTS.get(parsed.scheme, 80)))
    return routes
