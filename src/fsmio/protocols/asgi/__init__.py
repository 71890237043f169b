"""ASGI 3.0 hosting: ``GAsgiServer`` (the ``http`` and ``lifespan`` scopes)."""

from .c_asgi_server import GAsgiServer
from .messages import build_http_scope

__all__ = ["GAsgiServer", "build_http_scope"]
