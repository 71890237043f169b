"""The pure core of fsmio: state machines, events, gobjs and their config.

Nothing here imports asyncio, socket, select or time (a test checks it): the core can be
driven and tested with no event loop at all.  The GAplic (``fsmio.aplic``) runs it on one.
"""

from .deferred import Deferred, DeferredList
from .errors import (
    EventError,
    EventNotAcceptedError,
    FsmioError,
    GConfigTemplateError,
    GConfigValidateError,
    GObjError,
    MachineError,
    SendDepthError,
    StateError,
)
from .event import Event
from .gconfig import FLAG_DIRECT_ATTR, GConfig, add_gconfig, asbool
from .gobj import GOBJ_GCONFIG, GObj, Subscription, inside, lineage
from .smachine import EMPTY_FSM, MAX_SEND_DEPTH, SMachine

__all__ = [
    "EMPTY_FSM",
    "FLAG_DIRECT_ATTR",
    "GOBJ_GCONFIG",
    "MAX_SEND_DEPTH",
    "Deferred",
    "DeferredList",
    "Event",
    "EventError",
    "EventNotAcceptedError",
    "FsmioError",
    "GConfig",
    "GConfigTemplateError",
    "GConfigValidateError",
    "GObj",
    "GObjError",
    "MachineError",
    "SMachine",
    "SendDepthError",
    "StateError",
    "Subscription",
    "add_gconfig",
    "asbool",
    "inside",
    "lineage",
]
