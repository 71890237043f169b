"""WebSocket (RFC 6455): ``GWebSocket``, server and client, on websockets' sans-IO layer."""

from .c_websocket import GWebSocket

__all__ = ["GWebSocket"]
