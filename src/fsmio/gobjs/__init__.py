"""The essential gobjs: timers, sockets, listening servers and reconnecting clients."""

from .c_connex import GConnex
from .c_sock import GSock, hexdump
from .c_srv_sock import GServerSock
from .c_timer import GTimer

__all__ = ["GConnex", "GServerSock", "GSock", "GTimer", "hexdump"]
