"""The essential gobjs: timers, sockets, listening servers, reconnecting clients, stdin."""

from .c_connex import GConnex
from .c_sock import GSock, close_all_sockets, hexdump
from .c_srv_sock import GServerSock
from .c_ssl_sock import GSSLSock
from .c_stdin import GStdin
from .c_timer import GTimer

__all__ = [
    "GConnex",
    "GSSLSock",
    "GServerSock",
    "GSock",
    "GStdin",
    "GTimer",
    "close_all_sockets",
    "hexdump",
]
