"""Beyond one loop: events between GAplics over NATS, and GAplics in threads and processes.

``GRemote`` needs the ``nats`` extra (``pip install 'fsmio[nats]'``); it imports nats-py
only when it connects, so importing this package does not need it.
"""

from .c_remote import GRemote, IntraEvent
from .errors import (
    RemoteDisconnectedError,
    RemoteError,
    RemoteNameError,
    RemotePayloadTooLargeError,
)
from .subjects import Subjects, check_token

__all__ = [
    "GRemote",
    "IntraEvent",
    "RemoteDisconnectedError",
    "RemoteError",
    "RemoteNameError",
    "RemotePayloadTooLargeError",
    "Subjects",
    "check_token",
]
