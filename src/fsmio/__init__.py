"""fsmio: network programs built out of state machines.

The successor of ginsfsm: every object (a *gobj*) has a declared finite-state machine,
gobjs form a tree and talk only through events, and a GAplic runs them on an asyncio (or
uvloop) event loop.  Every public name is importable from here::

    from fsmio import GAplic, GObj, GTimer, GSock, GServerSock, GConnex
"""

from ._version import __version__
from .aplic import Callback, GAplic, GAplicThreadWorker, TimerHandle, setup_gaplic_thread
from .core import (
    EMPTY_FSM,
    FLAG_DIRECT_ATTR,
    GOBJ_GCONFIG,
    MAX_SEND_DEPTH,
    Deferred,
    DeferredList,
    Event,
    EventError,
    EventNotAcceptedError,
    FsmioError,
    GConfig,
    GConfigTemplateError,
    GConfigValidateError,
    GObj,
    GObjError,
    MachineError,
    SendDepthError,
    SMachine,
    StateError,
    Subscription,
    add_gconfig,
    asbool,
    inside,
    lineage,
)
from .core.registry import (
    get_global_app,
    get_global_main_gaplic,
    global_get_gaplic,
    global_get_gobj,
    list_globals,
    set_global_app,
    set_global_main_gaplic,
)
from .gobjs import GConnex, GServerSock, GSock, GTimer, hexdump
from .protocols.websocket import GWebSocket

__all__ = [
    "EMPTY_FSM",
    "FLAG_DIRECT_ATTR",
    "GOBJ_GCONFIG",
    "MAX_SEND_DEPTH",
    "Callback",
    "Deferred",
    "DeferredList",
    "Event",
    "EventError",
    "EventNotAcceptedError",
    "FsmioError",
    "GAplic",
    "GAplicThreadWorker",
    "GConfig",
    "GConfigTemplateError",
    "GConfigValidateError",
    "GConnex",
    "GObj",
    "GObjError",
    "GServerSock",
    "GSock",
    "GTimer",
    "GWebSocket",
    "MachineError",
    "SMachine",
    "SendDepthError",
    "StateError",
    "Subscription",
    "TimerHandle",
    "__version__",
    "add_gconfig",
    "asbool",
    "get_global_app",
    "get_global_main_gaplic",
    "global_get_gaplic",
    "global_get_gobj",
    "hexdump",
    "inside",
    "lineage",
    "list_globals",
    "set_global_app",
    "set_global_main_gaplic",
    "setup_gaplic_thread",
]
