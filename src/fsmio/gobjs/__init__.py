"""The essential gobjs: timers (and, later, sockets)."""

from .c_timer import GTimer

__all__ = ["GTimer"]
